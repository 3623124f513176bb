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
        Engine("openvino", "OpenVINO", frozenset({Accelerator.NONE, Accelerator.INTEL_GPU}),
               ("fp32", "fp16", "bf16", "int8"),
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


# --- what this version builds, and what this host offers -----------------------------------------------------
# The port the wizard reads (ux) and deployment's converter registry implements: one table, so the form never
# offers a build the convert stage cannot make. "here": converted, loaded and measured on the server (when the
# engine's package imports); "device": the server hands over the ONNX and a build script, the device builds it.
# An engine with no entry is a slot not built in this version.

HERE, ON_DEVICE = "here", "device"

BUILT: dict[str, dict[str, str]] = {
    "pytorch": {"fp32": HERE},
    "onnxruntime": {"fp32": HERE, "fp16": HERE, "int8": HERE},
    "openvino": {"fp32": HERE, "fp16": HERE, "bf16": HERE, "int8": HERE},
    "tensorrt": {"fp32": ON_DEVICE, "fp16": ON_DEVICE, "int8": ON_DEVICE},
    "tvm": {"fp32": HERE},  # host CPU here; aarch64 boards get a cross-compiled library that runs on the device
    "rknn": {"fp16": ON_DEVICE, "int8": ON_DEVICE},  # built here in its own environment, checked in its simulator
    # converted by onnx2tf in its own environment; the TFLite interpreter runs the file here too (guard, benchmark)
    "tflite": {"fp32": HERE, "fp16": HERE, "int8": HERE},
}


@dataclass(frozen=True)
class EngineSupport:
    engine: str
    label: str
    here: tuple[str, ...]  # precisions converted and run on this server
    on_device: tuple[str, ...]  # precisions handed over as ONNX + build script, built on the device
    unavailable: dict  # precision -> why it is not offered (to grey it out with a reason)

    @property
    def built(self) -> tuple[str, ...]:
        return self.here + self.on_device

    def problem(self, precision: str) -> str | None:
        if precision in self.built:
            return None
        return self.unavailable.get(precision) or f"{self.label} does not offer {precision}."

    def as_dict(self) -> dict:
        return {"engine": self.engine, "label": self.label, "here": list(self.here), "on_device": list(self.on_device),
                "unavailable": dict(self.unavailable)}


def cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """bf16 arithmetic in hardware (AVX512-BF16 or AMX-BF16 on x86; BF16 on Arm): where OpenVINO's bf16 pays."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def engine_support(engine_key: str, *, flags: frozenset[str] | None = None,
                   importable=None) -> EngineSupport:
    """Which precisions of an engine this version builds on this host. `importable(module) -> bool` defaults to
    a real import check (find_spec, so nothing heavy is imported here)."""
    import importlib.util

    engine = ENGINES[engine_key]
    importable = importable or (lambda name: importlib.util.find_spec(name) is not None)
    built = BUILT.get(engine_key, {})
    here, on_device, unavailable = [], [], {}
    for precision in dict.fromkeys((*engine.precisions, *built)):
        where = built.get(precision)
        if where is None:
            unavailable[precision] = f"{engine.label} {precision} builds are not in this version."
        elif precision == "bf16" and not cpu_has_bf16(flags):
            unavailable[precision] = "this server's CPU has no bf16 instructions (AVX512-BF16 / AMX)."
        elif why := _side_env_missing(engine_key):
            unavailable[precision] = f"{engine.label} needs {why}"  # e.g. `./tango engines install rknn`
        elif where == HERE and engine_key not in _SIDE_ENV and not importable(_PACKAGE.get(engine_key, engine_key)):
            unavailable[precision] = f"{_PACKAGE.get(engine_key, engine_key)} is not installed on this server."
        elif where == HERE:
            here.append(precision)
        else:
            on_device.append(precision)
    if engine_key == "tensorrt" and importable("tensorrt"):  # a gpu worker image that ships it builds here
        here, on_device = on_device, []
    return EngineSupport(engine_key, engine.label, tuple(here), tuple(on_device), unavailable)


_PACKAGE = {"pytorch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt",
            "tvm": "tvm"}
_SIDE_ENV = ("rknn", "tflite")  # engines whose converter runs in an environment of its own (tango_common.sideenvs)


def _side_env_missing(engine_key: str) -> str | None:
    if engine_key not in _SIDE_ENV:
        return None
    from .sideenvs import SIDE_ENVS

    return SIDE_ENVS[engine_key].missing()


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
