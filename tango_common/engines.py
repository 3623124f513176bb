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


# --- layers an engine cannot run, or runs slowly (the visualiser flags them before anything is trained) -------
# Keyed by engine, then by the layer type as the graph names it (torch.nn class names). What is not listed runs.
# Every engine but PyTorch receives the network as ONNX, so the ONNX export's limits hold for all of them.
ONNX_ENGINES = frozenset(ENGINES) - {"pytorch"}
LAYER_NOTES: dict[str, dict[str, tuple[str, str]]] = {
    "rknn": {
        "GELU": ("slow", "runs GELU as an Erf subgraph, which the Rockchip NPU may hand back to the CPU"),
    },
}


def layer_problem(engine_key: str, op: str, params: dict, input_shape: list[int] | None) -> tuple[str, str] | None:
    """("unsupported" | "slow", why) for a layer of this type and parameters on the engine, or None when it runs.

    input_shape is the layer's input (batch, channels, height, width) where known.
    """
    if engine_key in ONNX_ENGINES and op in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d") and input_shape:
        size = params.get("output_size")
        sizes = size if isinstance(size, list | tuple) else [size, size]
        if len(input_shape) == 4 and any(s and dim % s for dim, s in zip(input_shape[2:], sizes, strict=False)):
            return ("unsupported", f"the ONNX export needs the input ({input_shape[2]}x{input_shape[3]}) to be a "
                                   f"multiple of the output size {size}; {ENGINES[engine_key].label} gets ONNX")
    level, why = LAYER_NOTES.get(engine_key, {}).get(op, ("ok", ""))
    return None if level == "ok" else (level, why)
