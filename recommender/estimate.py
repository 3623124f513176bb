"""Latency and memory estimates from a device's datasheet figures. Django-free.

This is a roofline estimate, not a measurement: a model's inference takes at least as long as its arithmetic at the
device's peak (scaled by an efficiency factor, since real kernels never reach peak) and at least as long as moving
its weights through memory. The larger of the two is the estimate. It ranks candidate models against a latency
budget before anything is trained; the benchmark stage measures the real number on the device.
"""

BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "int8": 1}

# Fraction of peak that convolutional inference typically sustains; a tuning knob, not a physical constant.
COMPUTE_EFFICIENCY = 0.3
BANDWIDTH_EFFICIENCY = 0.7
# Activations, runtime workspace and the engine itself on top of the weights.
MEMORY_OVERHEAD_FACTOR = 1.5
RUNTIME_OVERHEAD_MB = 200.0


def bytes_per_value(precision: str) -> int:
    try:
        return BYTES_PER_VALUE[precision]
    except KeyError:
        raise ValueError(f"Unknown precision {precision!r}; known: {', '.join(BYTES_PER_VALUE)}.") from None


def peak_gflops(device_specs: dict, precision: str) -> float:
    """The device's peak at this precision, falling back to the next wider one when the datasheet gives none."""
    fp32 = device_specs["peak_fp32_gflops"]
    fp16 = device_specs.get("peak_fp16_gflops") or fp32
    if precision == "fp32":
        return fp32
    if precision == "fp16":
        return fp16
    bytes_per_value(precision)  # validates
    return device_specs.get("peak_int8_gops") or fp16


def estimate_latency_ms(
    flops: float,
    params: float,
    device_specs: dict,
    precision: str = "fp32",
    *,
    activation_bytes: float = 0.0,
    efficiency: float = COMPUTE_EFFICIENCY,
) -> float:
    """Roofline estimate of one inference's latency in ms.

    flops: floating-point operations per inference (2 per multiply-accumulate); params: parameter count;
    device_specs: Device field values (peak_fp32_gflops, peak_fp16_gflops, peak_int8_gops, memory_bandwidth_gbps).
    """
    compute_s = flops / (peak_gflops(device_specs, precision) * 1e9 * efficiency)
    traffic_bytes = params * bytes_per_value(precision) + activation_bytes
    memory_s = traffic_bytes / (device_specs["memory_bandwidth_gbps"] * 1e9 * BANDWIDTH_EFFICIENCY)
    return max(compute_s, memory_s) * 1000.0


def required_memory_mb(params: float, precision: str) -> float:
    weights_mb = params * bytes_per_value(precision) / 2**20
    return weights_mb * MEMORY_OVERHEAD_FACTOR + RUNTIME_OVERHEAD_MB


def fits_memory(params: float, precision: str, memory_mb: float) -> bool:
    """Whether the model, with a rough allowance for activations and the runtime, fits in memory_mb."""
    return required_memory_mb(params, precision) <= memory_mb
