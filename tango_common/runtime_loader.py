"""Open a bundle's model on its engine: one function for infer.py, serve.py and smoke_test.py in every bundle.

Standalone on purpose (standard library only): the bundle builder copies this file into every bundle as
`tango_common/runtime_loader.py`. A bundle's `runtime.py` is the engine's own loader (ONNX Runtime, OpenVINO,
TorchScript, TensorRT); it returns an object that runs like an ONNX Runtime session (`get_inputs()`, `run()`), so
the scripts around it are the same for every engine. A folder without runtime.py (a bundle made before there were
several engines, or the portal's own checks) runs model.onnx on ONNX Runtime's CPU provider.
"""

import importlib.util
from pathlib import Path


def runtime_module(bundle_dir):
    """The bundle's runtime.py as a module, or None when the folder has none."""
    path = Path(bundle_dir) / "runtime.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("tango_bundle_runtime", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_session(bundle_dir, config: dict):
    """The session that runs the bundle's model: (get_inputs()[0].name, run(None, {name: batch}) -> [outputs])."""
    module = runtime_module(bundle_dir)
    if module is not None:
        return module.load_session(Path(bundle_dir), config)
    import onnxruntime as ort

    model = Path(bundle_dir) / config.get("model_file", "model.onnx")
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def describe_session(bundle_dir, session) -> str:
    """What runs the model, in words (engine, version, device)."""
    module = runtime_module(bundle_dir)
    if module is not None and hasattr(module, "describe"):
        return module.describe(session)
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__} (CPUExecutionProvider)"
