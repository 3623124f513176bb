"""Latency of a candidate on a device × engine × precision: a roofline prior, corrected by measured records.
Django-free.

The model (chosen because it is the roofline's own shape, so it extrapolates to models bigger than any measured,
and because three coefficients can be pinned by a handful of records):

    latency = (a · FLOPs / peak  +  b · bytes moved / bandwidth  +  c · operations × 1 µs) · exp(r)

The datasheet gives the prior: a = 1 / compute efficiency, b = 1 / bandwidth efficiency, c = per-operation
runtime overhead (5 µs on a CPU-only device, 20 µs with an accelerator: a kernel launch). Records correct it: the
three coefficients are fitted per device × engine × precision by least squares on log latency (so the loss is
relative error, which is what a ±10 % target measures), with a penalty pulling log a, log b, log c toward the
prior. With no record the prior stands; with a few, mostly the overall scale moves; with many, the balance between
compute, memory and overhead is learnt too. Coefficients stay positive (fitted in log space).

r is what the three sums cannot say: how this device departs from its roofline for networks like the ones
measured (a runtime's kernels suit some layer shapes better than others). It is the kernel-weighted mean of the
records' log residuals, the weights falling with distance in (log FLOPs, log weight bytes, log activation bytes,
log operations, share of 1×1-convolution FLOPs), shrunk toward 0 as if one more record at distance 0 said the
roofline is right. Far from every record, r is 0 and the roofline alone predicts. On this server's 30 bench
candidates (bench/latency_prediction.py, timings measured under load, drift-corrected) it raised the leave-one-out
share within ±10 % from 83 % to 90 %.

Refitting is cheap (a few ms), so callers fit on read, keyed by the record count: every new record recalibrates.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from .costs import Costs, bytes_per_value

# Fractions of datasheet peak that convolutional inference sustains: the prior, not a physical constant.
COMPUTE_EFFICIENCY = 0.3
BANDWIDTH_EFFICIENCY = 0.5
OP_OVERHEAD_S = 20e-6  # per executed operation with an accelerator (kernel launch, framework dispatch)
OP_OVERHEAD_CPU_S = 5e-6  # per operation on a CPU-only device (dispatch alone: ONNX Runtime measures ~2-3 µs here)
OP_UNIT_S = 1e-6
# How far records may pull a coefficient from the prior: the penalty's weight on (log coefficient − prior)².
PRIOR_WEIGHT = 0.05
# The residual correction: the kernel's scale per descriptor (an e-fold in each cost; a quarter of the FLOPs in
# 1×1 convolutions), and the shrinkage (the weight of the pseudo-record that says "no correction").
RESIDUAL_SCALES = (1.0, 1.0, 1.0, 1.0, 0.25)
RESIDUAL_SHRINK = 1.0


@dataclass(frozen=True)
class DeviceSpecs:
    peak_fp32_gflops: float
    memory_bandwidth_gbps: float
    memory_mb: float
    peak_fp16_gflops: float | None = None
    peak_int8_gops: float | None = None
    cpu_only: bool = False  # no accelerator: the per-operation overhead prior is a CPU's

    def prior_coefficients(self) -> np.ndarray:
        overhead = OP_OVERHEAD_CPU_S if self.cpu_only else OP_OVERHEAD_S
        return np.array([1 / COMPUTE_EFFICIENCY, 1 / BANDWIDTH_EFFICIENCY, overhead / OP_UNIT_S])

    def peak_gflops(self, precision: str) -> float:
        """Peak at this precision, falling back to the next wider one when the datasheet gives none."""
        bytes_per_value(precision)  # validates
        fp16 = self.peak_fp16_gflops or self.peak_fp32_gflops
        return {"fp32": self.peak_fp32_gflops, "fp16": fp16, "int8": self.peak_int8_gops or fp16}[precision]


@dataclass(frozen=True)
class Record:
    """One measured latency (and memory, when known) of a candidate with these costs."""

    costs: Costs
    latency_ms: float
    memory_mb: float | None = None


def features(costs: Costs, specs: DeviceSpecs, precision: str) -> np.ndarray:
    """Seconds the three roofline terms take at 100 % of the datasheet (the op term in µs units)."""
    compute_s = costs.flops / (specs.peak_gflops(precision) * 1e9)
    moved = costs.weight_bytes_at(precision) + 2 * costs.activation_bytes_at(precision)  # written, then read
    memory_s = moved / (specs.memory_bandwidth_gbps * 1e9)
    return np.array([compute_s, memory_s, costs.ops * OP_UNIT_S])


PRIOR_COEFFICIENTS = DeviceSpecs(1, 1, 1).prior_coefficients()  # with an accelerator (a CPU's: cpu_only=True)


def descriptor(costs: Costs) -> np.ndarray:
    """Where a network sits for the residual correction: its log costs and its share of 1×1-convolution FLOPs."""
    share = costs.extra.get("conv1x1_flops", 0.0) / costs.flops if costs.flops else 0.0
    values = (costs.flops, costs.weight_bytes, costs.activation_bytes, costs.ops)
    return np.array([math.log(max(v, 1.0)) for v in values] + [share]) / np.array(RESIDUAL_SCALES)


@dataclass
class LatencyModel:
    specs: DeviceSpecs
    precision: str
    coefficients: np.ndarray | None = None  # None: the device's prior
    records: int = 0
    fit_error: float | None = None  # median |relative error| on the records it was fitted to
    # The records' descriptors and log residuals after the roofline fit (the residual correction's data).
    neighbours: np.ndarray = field(default_factory=lambda: np.zeros((0, len(RESIDUAL_SCALES))))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        if self.coefficients is None:
            self.coefficients = self.specs.prior_coefficients()

    @classmethod
    def fit(cls, specs: DeviceSpecs, precision: str, records: list[Record]) -> "LatencyModel":
        usable = [r for r in records if r.latency_ms > 0]
        if not usable:
            return cls(specs, precision)
        x = np.array([features(r.costs, specs, precision) for r in usable])
        y = np.log(np.array([r.latency_ms / 1000 for r in usable]))
        prior = np.log(specs.prior_coefficients())
        weight = math.sqrt(PRIOR_WEIGHT)

        def residuals(theta):
            return np.concatenate([np.log(x @ np.exp(theta)) - y, weight * (theta - prior)])

        theta = least_squares(residuals, prior, method="lm").x
        left = y - np.log(x @ np.exp(theta))
        model = cls(specs, precision, np.exp(theta), len(usable),
                    neighbours=np.array([descriptor(r.costs) for r in usable]), residuals=left)
        fitted = [model.predict_ms(r.costs) / r.latency_ms - 1 for r in usable]
        model.fit_error = float(np.median(np.abs(fitted)))
        return model

    def roofline_ms(self, costs: Costs) -> float:
        """The fitted roofline alone, without the residual correction."""
        return float(features(costs, self.specs, self.precision) @ self.coefficients) * 1000

    def correction(self, costs: Costs) -> float:
        """exp(r): the factor the records near this network put on the roofline (1 with no record near)."""
        if not len(self.residuals):
            return 1.0
        distance = ((self.neighbours - descriptor(costs)) ** 2).sum(axis=1)
        kernel = np.exp(-distance / 2)
        return math.exp(float(kernel @ self.residuals) / (float(kernel.sum()) + RESIDUAL_SHRINK))

    def predict_ms(self, costs: Costs) -> float:
        return self.roofline_ms(costs) * self.correction(costs)

    def prior_ms(self, costs: Costs) -> float:
        return float(features(costs, self.specs, self.precision) @ self.specs.prior_coefficients()) * 1000

    def confidence(self) -> str:
        if not self.records:
            return "datasheet prior only (no measured record yet)"
        return f"fitted to {self.records} measured record{'s' if self.records != 1 else ''}"

    def describe(self) -> dict:
        a, b, c = self.coefficients
        return {"records": self.records, "compute_efficiency": 1 / a, "bandwidth_efficiency": 1 / b,
                "op_overhead_us": c * OP_UNIT_S * 1e6, "fit_error": self.fit_error, "confidence": self.confidence()}
