"""ONNX Runtime for this bundle: `load_session(bundle_dir, config)` -> an onnxruntime.InferenceSession.

infer.py, serve.py and smoke_test.py load the model through this file only, so the same scripts run every engine
TANGO bundles; this copy is the ONNX Runtime one. The CUDA provider is used when the installed onnxruntime has it
(the onnxruntime-gpu build) and the bundle was made for a device with an NVIDIA GPU; otherwise the CPU.
"""

from pathlib import Path


def load_session(bundle_dir, config):
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if config.get("gpu") and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    if config.get("threads"):
        options.intra_op_num_threads = int(config["threads"])
    return ort.InferenceSession(str(Path(bundle_dir) / config["model_file"]), options, providers=providers)


def describe(session) -> str:
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__} ({', '.join(session.get_providers())})"
