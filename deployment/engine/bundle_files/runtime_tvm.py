"""Apache TVM for this bundle: `load_session(bundle_dir, config)` -> an object that runs like an ONNX Runtime session.

The model is a shared library TVM compiled for the device's CPU (`device_arch` in preprocess.json); it is loaded with
the TVM runtime of the version that compiled it (requirements.txt pins it) and run by Relax's virtual machine. A
library cross-compiled for an aarch64 board cannot be loaded anywhere else: off the board
tango_common/runtime_loader.py does not come here and runs the same network from model.onnx on ONNX Runtime
(runtime_host.py), so smoke_test.py can be tried before the board is at hand.
"""

from pathlib import Path

import numpy as np


class _Input:
    def __init__(self, name):
        self.name = name


class TVMSession:
    """The library is compiled for batch 1: a batch runs image by image."""

    def __init__(self, main, device, input_name):
        self.main, self.device, self.input_name = main, device, input_name

    def get_inputs(self):
        return [_Input(self.input_name)]

    def run(self, _output_names, feed):
        import tvm

        outputs = []
        for item in np.asarray(next(iter(feed.values())), dtype=np.float32):
            output = self.main(tvm.runtime.tensor(np.ascontiguousarray(item[None]), self.device))
            while not hasattr(output, "numpy"):  # a model with several outputs answers a tuple: the first
                output = output[0]
            outputs.append(output.numpy())
        return [np.concatenate(outputs)]


def load_session(bundle_dir, config):
    try:
        import tvm
        from tvm import relax
    except ImportError as error:
        raise SystemExit(f"runtime.py: the TVM runtime is missing: `pip install -r requirements.txt` ({error}).") \
            from error
    if config.get("threads"):
        threadpool = tvm.get_global_func("runtime.config_threadpool", allow_missing=True)
        if threadpool is not None:
            threadpool(0, int(config["threads"]))
    module = tvm.runtime.load_module(str(Path(bundle_dir) / config["model_file"]))
    device = tvm.cpu()
    return TVMSession(relax.VirtualMachine(module, device)["main"], device, config.get("input_name", "images"))


def describe(session) -> str:
    import tvm

    return f"Apache TVM {tvm.__version__} runtime (CPU)"
