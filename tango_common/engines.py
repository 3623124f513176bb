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
    # it also runs on the CPU of a device whose cpu_name names one of these vendors, whatever the accelerator beside
    # it (OpenVINO on an Intel PC with an NVIDIA card: the Intel CPU is its home)
    cpu_vendors: tuple[str, ...] = ()


ENGINES: dict[str, Engine] = {
    e.key: e
    for e in (
        Engine("pytorch", "PyTorch", ANY, ("fp32", "fp16"), "runs wherever Python and torch do"),
        Engine("onnxruntime", "ONNX Runtime", ANY, ("fp32", "fp16", "int8"), "portable CPU/GPU runtime"),
        Engine("openvino", "OpenVINO", frozenset({Accelerator.NONE, Accelerator.INTEL_GPU}),
               ("fp32", "fp16", "bf16", "int8"),
               "Intel CPUs and GPUs", cpu_vendors=("Intel",)),
        Engine("tensorrt", "TensorRT", frozenset({Accelerator.NVIDIA_GPU}), ("fp32", "fp16", "int8"),
               "needs an NVIDIA GPU; the engine is built on the device"),
        Engine("tvm", "Apache TVM", ANY, ("fp32", "fp16", "int8"), "compiles for CPUs and GPUs, Mali included"),
        Engine("rknn", "RKNN", frozenset({Accelerator.ROCKCHIP_NPU}), ("fp16", "int8"), "needs a Rockchip NPU"),
        Engine("tflite", "TensorFlow Lite", ANY, ("fp32", "fp16", "int8"), "mobile and embedded CPUs, GPU delegates"),
    )
}

ENGINE_CHOICES = [(e.key, e.label) for e in ENGINES.values()]


def engine_problem(engine_key: str, accelerator: str, cpu_name: str = "") -> str | None:
    """Why a device with this accelerator (and this CPU) cannot run the engine, or None when it can."""
    engine = ENGINES.get(engine_key)
    if engine is None:
        return f"Unknown engine {engine_key!r}; known: {', '.join(ENGINES)}."
    if any(vendor.lower() in cpu_name.lower() for vendor in engine.cpu_vendors):
        return None
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
# One table, beside the engines and what this version builds (deployment's converter registry reads the same
# module), so a fact about an engine lives in one place. Each fact names the layer types it is about (torch.nn
# class names, as the graph names layers; "Upsample" and "Detect" for a detector's rows), when it applies (the
# layer's parameters and input shape), what it means ("unsupported": the engine cannot run it; "slow": it runs,
# off the fast path), why, and where it comes from. Facts are kept to what a source states; an engine with no
# fact for a layer runs it (every engine but PyTorch receives the network as ONNX, so the export's limits hold
# for all of them).
ONNX_ENGINES = frozenset(ENGINES) - {"pytorch"}


@dataclass(frozen=True)
class LayerFact:
    engines: frozenset
    ops: frozenset
    level: str  # "unsupported" | "slow"
    why: str  # completes "<engine label> ..."
    source: str
    when: object = None  # (params, input_shape) -> bool; None: always

    def applies(self, engine_key: str, op: str, params: dict, input_shape) -> bool:
        if engine_key not in self.engines or op not in self.ops:
            return False
        try:
            return True if self.when is None else bool(self.when(params or {}, input_shape))
        except (TypeError, ValueError, IndexError, KeyError):
            return False


def _pair(value, default: int) -> tuple[int, int]:
    if value is None:
        return default, default
    if isinstance(value, list | tuple):
        return (int(value[0]), int(value[-1])) if value else (default, default)
    return int(value), int(value)


def _adaptive_not_divisible(params: dict, shape) -> bool:
    if not shape or len(shape) != 4:
        return False
    sizes = _pair(params.get("output_size"), 1)
    return any(s and dim % s for dim, s in zip(shape[2:], sizes, strict=False))


def _grouped(params: dict, shape) -> bool:  # 1 < groups < input channels: neither plain nor depthwise
    groups, channels = int(params.get("groups") or 1), int(params.get("in_channels") or 0)
    return 1 < groups < channels


def _beyond(limits: dict):
    """Any of kernel_size/stride/padding above its limit."""
    def check(params: dict, shape) -> bool:
        defaults = {"kernel_size": 1, "stride": 1, "padding": 0}
        return any(max(_pair(params.get(name), defaults[name])) > limit for name, limit in limits.items()
                   if params.get(name) is not None)
    return check


RKNN_OPS_1_3 = ("rockchip-linux/rknn-toolkit2 doc/RKNNToolKit2_OP_Support-1.3.0.md (the NPU's per-operator "
                "limits; the portal's side environment installs rknn-toolkit2 2.3.2, whose list ships as a PDF)")
TFLITE_GPU = ("tensorflow.org/lite/performance/gpu: the GPU delegate's documented op list (ADD, AVERAGE_POOL_2D, "
              "CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, LOGISTIC, MAX_POOL_2D, MUL, PAD, PRELU, "
              "RELU, RELU6, RESHAPE, RESIZE_BILINEAR, SOFTMAX, …); other ops run on the CPU, and the split is often "
              "slower than the CPU alone")

LAYER_FACTS: tuple[LayerFact, ...] = (
    LayerFact(ONNX_ENGINES, frozenset({"AdaptiveAvgPool2d", "AdaptiveMaxPool2d"}), "unsupported",
              "gets ONNX, and PyTorch's ONNX export of adaptive pooling needs the input to be a multiple of the "
              "output size", "torch.onnx symbolic_opset9 adaptive pooling: exported as a fixed pool only when the "
              "output size divides the input", _adaptive_not_divisible),
    # RKNN (Rockchip NPU)
    LayerFact(frozenset({"rknn"}), frozenset({"Conv2d"}), "unsupported",
              "runs convolutions on the NPU with kernel 1–31, stride 1–7 and padding 0–15 only", RKNN_OPS_1_3,
              _beyond({"kernel_size": 31, "stride": 7, "padding": 15})),
    LayerFact(frozenset({"rknn"}), frozenset({"MaxPool2d", "AvgPool2d"}), "slow",
              "pools on the NPU with kernel 1–7, stride 1–8 and padding 0–7 only: a larger pool (an SPP's 9 or 13) "
              "runs off the NPU", RKNN_OPS_1_3, _beyond({"kernel_size": 7, "stride": 8, "padding": 7})),
    LayerFact(frozenset({"rknn"}), frozenset({"MaxPool2d", "AvgPool2d"}), "slow",
              "pools on the NPU with ceil_mode off only", RKNN_OPS_1_3, lambda p, s: bool(p.get("ceil_mode"))),
    LayerFact(frozenset({"rknn"}), frozenset({"Upsample"}), "slow",
              "resizes on the NPU in nearest mode only", RKNN_OPS_1_3,
              lambda p, s: p.get("mode") not in (None, "nearest")),
    LayerFact(frozenset({"rknn"}), frozenset({"Detect"}), "slow",
              "runs the head's DFL (a softmax over box-distance bins) poorly on the NPU; Rockchip's own YOLOv8 "
              "export moves it into post-processing on the CPU",
              "airockchip/ultralytics_yolov8 RKOPT_README.md ('the dfl structure has poor performance on NPU "
              "processing, moved outside the model')"),
    # TensorRT (NVIDIA GPUs)
    LayerFact(frozenset({"tensorrt"}), frozenset({"Conv2d"}), "slow",
              "uses Tensor Cores for a convolution whose channel counts are multiples of 8 (FP16; INT8 wants more): "
              "other counts are padded or run on slower kernels",
              "NVIDIA Deep Learning Performance Guide, Convolutional Layers User's Guide (Tensor Core requirements "
              "on input and output channels)",
              lambda p, s: (int(p.get("in_channels") or 8) > 4 and int(p.get("in_channels") or 8) % 8 != 0)
              or int(p.get("out_channels") or 8) % 8 != 0),
    # PyTorch (eager)
    LayerFact(frozenset({"pytorch"}), frozenset({"Conv2d"}), "slow",
              "runs grouped convolutions (1 < groups < channels) far slower than their FLOPs suggest, often slower "
              "than the ungrouped layer", "pytorch/pytorch issues #70954 and #73764 (open: grouped Conv2d slower "
              "than a plain one, and than separate convolutions)", _grouped),
    # ONNX Runtime
    LayerFact(frozenset({"onnxruntime"}), frozenset({"Conv2d"}), "slow",
              "on the CPU takes several times the share of time a grouped or depthwise convolution's FLOPs "
              "suggest", "microsoft/onnxruntime issue #9192 (grouped/depthwise and pointwise convolutions measured "
              "against a 3x3 one on x86 and a Raspberry Pi 4)", lambda p, s: int(p.get("groups") or 1) > 1),
    # TensorFlow Lite
    LayerFact(frozenset({"tflite"}), frozenset({"LeakyReLU", "Hardswish", "GELU"}), "slow",
              "has this activation outside its GPU delegate's documented op list: on a GPU delegate it runs on the "
              "CPU", TFLITE_GPU),
    LayerFact(frozenset({"tflite"}), frozenset({"Upsample"}), "slow",
              "resizes on its GPU delegate with RESIZE_BILINEAR only: nearest-neighbour upsampling runs on the CPU",
              TFLITE_GPU, lambda p, s: p.get("mode") in (None, "nearest")),
)
# OpenVINO and TVM: no layer-type fact beyond the ONNX export's. OpenVINO (CPU) and ONNX Runtime are checked to
# load and run every layer type of the editor's palette (visualizer/tests/test_engine_facts.py).


def layer_facts(engine_key: str, op: str, params: dict, input_shape: list[int] | None) -> list[LayerFact]:
    """Every fact about a layer of this type and parameters on the engine (input_shape: batch, channels, height,
    width, where known)."""
    return [fact for fact in LAYER_FACTS if fact.applies(engine_key, op, params, input_shape)]


def layer_problem(engine_key: str, op: str, params: dict, input_shape: list[int] | None) -> tuple[str, str] | None:
    """("unsupported" | "slow", why) of the gravest fact about the layer on the engine, or None when it runs."""
    facts = sorted(layer_facts(engine_key, op, params, input_shape), key=lambda f: f.level != "unsupported")
    return (facts[0].level, facts[0].why) if facts else None
