"""The inference engines TANGO targets, and what each needs: the one place for engine facts. Django-free."""

from dataclasses import dataclass


class Accelerator:
    NONE = "none"  # CPU only
    NVIDIA_GPU = "nvidia_gpu"
    MALI_GPU = "mali_gpu"
    ADRENO_GPU = "adreno_gpu"
    INTEL_GPU = "intel_gpu"
    ROCKCHIP_NPU = "rockchip_npu"

    CHOICES = [
        (NONE, "None (CPU only)"),
        (NVIDIA_GPU, "NVIDIA GPU (CUDA)"),
        (MALI_GPU, "Arm Mali GPU"),
        (ADRENO_GPU, "Qualcomm Adreno GPU / Hexagon DSP"),
        (INTEL_GPU, "Intel integrated GPU"),
        (ROCKCHIP_NPU, "Rockchip NPU"),
    ]


ANY = frozenset(k for k, _ in Accelerator.CHOICES)


@dataclass(frozen=True)
class Engine:
    key: str
    label: str
    # A device runs the engine only if its accelerator is one of these.
    accelerators: frozenset
    precisions: tuple[str, ...]
    why: str


ENGINES: dict[str, Engine] = {
    e.key: e
    for e in (
        Engine("pytorch", "PyTorch", ANY, ("fp32", "fp16"), "runs wherever Python and torch do"),
        Engine("onnxruntime", "ONNX Runtime", ANY, ("fp32", "fp16", "int8"), "portable CPU/GPU runtime"),
        Engine("openvino", "OpenVINO", frozenset({Accelerator.NONE, Accelerator.INTEL_GPU}), ("fp32", "fp16", "int8"),
               "Intel CPUs and GPUs"),
        Engine("tensorrt", "TensorRT", frozenset({Accelerator.NVIDIA_GPU}), ("fp32", "fp16", "int8"),
               "needs an NVIDIA GPU; the engine is built on the device"),
        Engine("tvm", "Apache TVM", ANY, ("fp32", "fp16", "int8"), "compiles for CPUs and GPUs, Mali included"),
        Engine("rknn", "RKNN", frozenset({Accelerator.ROCKCHIP_NPU}), ("fp16", "int8"), "needs a Rockchip NPU"),
        Engine("tflite", "TensorFlow Lite", ANY, ("fp32", "fp16", "int8"), "mobile and embedded CPUs, GPU delegates"),
    )
}

ENGINE_CHOICES = [(e.key, e.label) for e in ENGINES.values()]


def engine_problem(engine_key: str, accelerator: str) -> str | None:
    """Why a device with this accelerator cannot run the engine, or None when it can."""
    engine = ENGINES.get(engine_key)
    if engine is None:
        return f"Unknown engine {engine_key!r}; known: {', '.join(ENGINES)}."
    if accelerator not in engine.accelerators:
        return f"{engine.label} {engine.why}; this device's accelerator ({accelerator}) cannot run it."
    return None
