"""Open a bundle's model on its engine: one function for infer.py, serve.py and smoke_test.py in every bundle.

Standalone on purpose (standard library only): the bundle builder copies this file into every bundle as
`tango_common/runtime_loader.py`. A bundle's `runtime.py` is the engine's own loader (ONNX Runtime, OpenVINO,
TorchScript, TensorRT); it returns an object that runs like an ONNX Runtime session (`get_inputs()`, `run()`), so
the scripts around it are the same for every engine. A folder without runtime.py (a bundle made before there were
several engines, or the portal's own checks) runs model.onnx on ONNX Runtime's CPU provider.

A model file that only the device can run (RKNN's .rknn on a Rockchip NPU, TVM's library cross-compiled for aarch64)
comes with `host_model_file` in preprocess.json (model.onnx, the same network before the engine's conversion) and
`runtime_host.py` (ONNX Runtime): on a machine that is not the device's architecture (`device_arch`) that file runs
instead, so the smoke test can be tried before the device is at hand. A TensorRT kit names its device's runtime
instead (`device_module`: tensorrt, JetPack's on a Jetson): where that does not import, its model.onnx runs on ONNX
Runtime. TANGO_BUNDLE_MODEL=device or =host picks a side by hand.
"""

import importlib.util
import os
import platform
from pathlib import Path

MACHINES = {"aarch64": ("aarch64", "arm64"), "x86_64": ("x86_64", "amd64")}  # platform.machine()'s spellings


def runs_device_model(config: dict) -> bool:
    """True where the bundle's device model file runs: always, unless it has a host model file and this machine is
    not the device's architecture."""
    if not config.get("host_model_file"):
        return True
    forced = os.environ.get("TANGO_BUNDLE_MODEL", "").lower()
    if forced in ("device", "host"):
        return forced == "device"
    if config.get("device_module"):
        return importlib.util.find_spec(config["device_module"]) is not None
    arch = config.get("device_arch", "aarch64")
    return platform.machine().lower() in MACHINES.get(arch, (arch,))


def runtime_module(bundle_dir, config: dict | None = None):
    """The module that opens the model here (runtime.py, or runtime_host.py off the device), or None when the folder
    has neither."""
    name = "runtime.py" if runs_device_model(config or {}) else "runtime_host.py"
    path = Path(bundle_dir) / name
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("tango_bundle_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_session(bundle_dir, config: dict):
    """The session that runs the bundle's model: (get_inputs()[0].name, run(None, {name: batch}) -> [outputs])."""
    module = runtime_module(bundle_dir, config)
    if module is not None:
        if not runs_device_model(config):
            config = {**config, "model_file": config["host_model_file"]}
        return module.load_session(Path(bundle_dir), config)
    import onnxruntime as ort

    model = Path(bundle_dir) / config.get("model_file", "model.onnx")
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def describe_session(bundle_dir, session, config: dict | None = None) -> str:
    """What runs the model, in words (engine, version, device, and which file off the device)."""
    module = runtime_module(bundle_dir, config)
    if module is not None and hasattr(module, "describe"):
        text = module.describe(session)
        if config and config.get("device_module") and not runs_device_model(config):
            text += (f" on {config['host_model_file']}: {config['device_module']} does not import here; on the "
                     f"device it builds the engine from {config['model_file']}")
        elif not runs_device_model(config or {}):
            text += (f" on {config['host_model_file']}: this machine is not the device, whose runtime runs "
                     f"{config['model_file']}")
        return text
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__} (CPUExecutionProvider)"
