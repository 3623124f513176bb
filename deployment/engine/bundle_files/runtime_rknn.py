"""RKNN for this bundle, on the Rockchip board: `load_session(bundle_dir, config)` -> an object that runs like an
ONNX Runtime session.

On the board (rk3566, rk3568, rk3588: aarch64 Linux) the `.rknn` file runs on the NPU through rknn-toolkit-lite2's
RKNNLite: load_rknn, init_runtime, inference, and release when the process ends. `pip install -r requirements.txt`
installs there the rknn-toolkit-lite2 of the toolkit version that built the file. Off the board (a PC, the portal's
server that checked the bundle) tango_common/runtime_loader.py does not come here: it runs the same network from
model.onnx on ONNX Runtime (runtime_host.py), so smoke_test.py can be tried before the board is at hand.
"""

import atexit
from pathlib import Path

import numpy as np


class _Input:
    def __init__(self, name):
        self.name = name


class RKNNLiteSession:
    """The .rknn file on the NPU. The file is built for batch 1: a batch runs image by image, in NCHW as infer.py
    prepares it (the toolkit's simulator was checked the same way)."""

    def __init__(self, lite, input_name):
        self.lite, self.input_name = lite, input_name

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        batch = np.asarray(next(iter(feed.values())), dtype=np.float32)
        outputs = []
        for item in batch:
            result = self.lite.inference(inputs=[np.ascontiguousarray(item[None])], data_format="nchw")
            if result is None:  # RKNNLite logs the reason and answers None
                raise RuntimeError("RKNNLite.inference failed (its log above says why).")
            outputs.append(np.asarray(result[0], dtype=np.float32).reshape(1, *np.shape(result[0])[1:]))
        return [np.concatenate(outputs)]

    def close(self):
        if self.lite is not None:
            self.lite.release()
            self.lite = None


def load_session(bundle_dir, config):
    try:
        from rknnlite.api import RKNNLite
    except ImportError as error:
        raise SystemExit("runtime.py: the NPU runtime is missing: `pip install -r requirements.txt` installs "
                         "rknn-toolkit-lite2 on the board (aarch64 Linux); the board also needs Rockchip's "
                         f"librknnrt.so ({error}).") from error
    lite = RKNNLite(verbose=False)
    path = Path(bundle_dir) / config["model_file"]
    if lite.load_rknn(str(path)) != 0:
        raise RuntimeError(f"RKNNLite could not load {path.name}.")
    if lite.init_runtime(core_mask=RKNNLite.NPU_CORE_AUTO) != 0:
        lite.release()
        raise RuntimeError(f"RKNNLite could not start the NPU runtime for {path.name} (built for "
                           f"{config.get('platform', 'a Rockchip NPU')}).")
    session = RKNNLiteSession(lite, config.get("input_name", "images"))
    atexit.register(session.close)  # the NPU context is the process's until release()
    return session


def describe(session) -> str:
    import importlib.metadata as metadata

    return f"rknn-toolkit-lite2 {metadata.version('rknn-toolkit-lite2')} (Rockchip NPU)"
