"""Latency of a candidate on a device × engine × precision: a roofline prior, corrected by measured records.
Django-free.

The model (chosen because it is the roofline's own shape, so it extrapolates to models bigger than any measured,
and because three coefficients can be pinned by a handful of records):

    latency = a · FLOPs / peak  +  b · bytes moved / bandwidth  +  c · operations × 1 µs

The datasheet gives the prior: a = 1 / compute efficiency, b = 1 / bandwidth efficiency, c = per-operation
runtime overhead. Records correct it: the three coefficients are fitted per device × engine × precision by
least squares on log latency (so the loss is relative error, which is what a ±10 % target measures), with a
penalty pulling log a, log b, log c toward the prior. With no record the prior stands; with a few, mostly the
overall scale moves; with many, the balance between compute, memory and overhead is learnt too. Coefficients
stay positive (fitted in log space), so a bigger model is never predicted faster.

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
OP_OVERHEAD_S = 20e-6  # per executed operation (kernel launch, framework dispatch)
OP_UNIT_S = 1e-6
# How far records may pull a coefficient from the prior: the penalty's weight on (log coefficient − prior)².
PRIOR_WEIGHT = 0.05


@dataclass(frozen=True)
class DeviceSpecs:
    peak_fp32_gflops: float
    memory_bandwidth_gbps: float
    memory_mb: float
    peak_fp16_gflops: float | None = None
    peak_int8_gops: float | None = None

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


PRIOR_COEFFICIENTS = np.array([1 / COMPUTE_EFFICIENCY, 1 / BANDWIDTH_EFFICIENCY, OP_OVERHEAD_S / OP_UNIT_S])


@dataclass
class LatencyModel:
    specs: DeviceSpecs
    precision: str
    coefficients: np.ndarray = field(default_factory=lambda: PRIOR_COEFFICIENTS.copy())
    records: int = 0
    fit_error: float | None = None  # median |relative error| on the records it was fitted to

    @classmethod
    def fit(cls, specs: DeviceSpecs, precision: str, records: list[Record]) -> "LatencyModel":
        usable = [r for r in records if r.latency_ms > 0]
        if not usable:
            return cls(specs, precision)
        x = np.array([features(r.costs, specs, precision) for r in usable])
        y = np.log(np.array([r.latency_ms / 1000 for r in usable]))
        prior = np.log(PRIOR_COEFFICIENTS)
        weight = math.sqrt(PRIOR_WEIGHT)

        def residuals(theta):
            return np.concatenate([np.log(x @ np.exp(theta)) - y, weight * (theta - prior)])

        theta = least_squares(residuals, prior, method="lm" if len(usable) + 3 >= 3 else "trf").x
        model = cls(specs, precision, np.exp(theta), len(usable))
        model.fit_error = float(np.median(np.abs(np.exp(np.log(x @ np.exp(theta)) - y) - 1)))
        return model

    def predict_ms(self, costs: Costs) -> float:
        return float(features(costs, self.specs, self.precision) @ self.coefficients) * 1000

    def prior_ms(self, costs: Costs) -> float:
        return float(features(costs, self.specs, self.precision) @ PRIOR_COEFFICIENTS) * 1000

    def confidence(self) -> str:
        if not self.records:
            return "datasheet prior only (no measured record yet)"
        return f"fitted to {self.records} measured record{'s' if self.records != 1 else ''}"

    def describe(self) -> dict:
        a, b, c = self.coefficients
        return {"records": self.records, "compute_efficiency": 1 / a, "bandwidth_efficiency": 1 / b,
                "op_overhead_us": c * OP_UNIT_S * 1e6, "fit_error": self.fit_error, "confidence": self.confidence()}
