"""Latency of a candidate on a device × engine × precision: a per-kernel roofline prior from the datasheet,
fitted to measured records, with a correction from the records nearest the candidate. Django-free.

The model is nn-Meter's idea (a network's latency is the sum of its kernels' latencies) with a handful of
parameters instead of a learnt predictor per kernel type, because a device has tens of records, not thousands of
kernel timings. Each kernel's time comes from its own roofline, not the network's:

    convolution   ((a · FLOPs / peak)^4 + (w · weight bytes / bandwidth)^4)^(1/4) + m · activation bytes / bandwidth
    matrix product, memory-bound kernels (norms, pooling, concatenation, resizing, unfused adds)
                  g · bytes / bandwidth,   e · bytes / bandwidth
    activations with an exponential (SiLU, sigmoid, softmax)   x · 20 FLOPs per value / peak
    every kernel  o · 1 µs (dispatch);  what the runtime fuses into a convolution (BatchNorm, ReLU, a residual add)
                  costs nothing

A convolution takes the larger of its compute time and the time to stream its weights (a smooth maximum): at batch
1 on a small feature map a wide layer is bound by its weights, on a large map by its arithmetic. Summing FLOPs and
weights over the whole network first (the previous model) cannot tell the two apart: ResNet-18 at 64 px and at 224
px have the same weights and differ 12× in FLOPs, yet 4.5× in latency. The kernel list is read from the model on
the meta device (tango_common.op_counter.KernelCounter), with the fusions ONNX export and the runtimes make.

The datasheet gives the prior: a = x = 1 / compute efficiency (0.3), w = m = g = e = 1 / bandwidth efficiency (0.5),
o = 5 µs on a CPU-only device, 20 µs with an accelerator (a kernel launch). Records correct it: the seven
coefficients are fitted per device × engine × precision by least squares on log latency (the loss is relative
error, what a ±10 % target measures), with a weak penalty pulling each log coefficient toward the prior.
Coefficients stay positive (fitted in log space). Seven coefficients need records: until KERNEL_FORM_MIN_RECORDS
(8) records carry a kernel list, the totals form below predicts (three coefficients, the prior with none).
bench/latency_prediction.py (30 candidates, ONNX Runtime fp32 on this server, quiet, drift-corrected), leave-one-out
with all records: 97 % within ±10 % against the totals form's 83 % on the same timings (median error 3.9 % vs 4.7 %),
timed as every benchmark record is (deployment.engine.timing: five blocks, five interleaved rounds; the two halves
of a candidate's rounds agree within ±10 % for all 30). Timed with a single 10th percentile of three rounds before,
the same model scored 83 %: most of the misses were the measurement's. With 3 records, on an earlier run
under load, the kernel form alone managed 49 % within ±10 % against the totals form's 57 %: hence the switch.

exp(r) corrects what the sum cannot say (a runtime's kernels suit some layer shapes better than others): r is the
kernel-weighted mean of the records' log residuals, the weights falling with distance in (log FLOPs, log weight
bytes, log activation bytes, log operations, share of 1×1-convolution FLOPs), shrunk toward 0 as if one more record
at distance 0 said the fit is right. Far from every record, r is 0.

The totals form reads the network's sums instead of its kernels: a · FLOPs / peak + b · bytes moved / bandwidth +
c · operations × 1 µs, fitted to every record (penalty 0.05 toward the prior: with few records mostly the overall
scale moves), with the same residual correction. It also predicts costs counted without a kernel list (an edited
detector's rows, a supernet's subnets). bench/latency_prediction.py measures both forms by leave-one-out.

Refitting is cheap (milliseconds), so callers fit on read, keyed by the record count: every new record recalibrates.
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
TRANSCENDENTAL_FLOPS = 20  # per value of an exponential activation (SiLU, sigmoid, softmax)
SMOOTH_MAX = 4  # the power of the smooth maximum between a convolution's compute and weight-streaming times (its
# root is taken as two square roots in _Kernels.seconds: the fit calls it thousands of times)
# How far records may pull a coefficient from the prior: the penalty's weight on (log coefficient − prior)².
PRIOR_WEIGHT = 0.05  # the totals form's three
KERNEL_PRIOR_WEIGHT = 0.01  # the kernel form's seven: its datasheet balance is further off (one thread on a CPU)
# The kernel form predicts once this many records have a kernel list; with fewer, the totals form's three
# coefficients (seven cannot be pinned by three records: leave-one-out on the bench's records says so).
KERNEL_FORM_MIN_RECORDS = 8
# The residual correction: the kernel's scale per descriptor (an e-fold in each cost; a quarter of the FLOPs in
# 1×1 convolutions), and the shrinkage (the weight of the pseudo-record that says "no correction").
RESIDUAL_SCALES = (1.0, 1.0, 1.0, 1.0, 0.25)
RESIDUAL_SHRINK = 1.0
KERNEL_TERMS = ("conv compute", "conv weights", "conv activations", "matrix products", "memory-bound kernels",
                "exponential activations", "per-kernel overhead")
TOTAL_TERMS = ("compute", "memory", "per-operation overhead")


@dataclass(frozen=True)
class DeviceSpecs:
    peak_fp32_gflops: float
    memory_bandwidth_gbps: float
    memory_mb: float
    peak_fp16_gflops: float | None = None
    peak_int8_gops: float | None = None
    cpu_only: bool = False  # no accelerator: the per-operation overhead prior is a CPU's

    def overhead_prior(self) -> float:
        return (OP_OVERHEAD_CPU_S if self.cpu_only else OP_OVERHEAD_S) / OP_UNIT_S

    def prior_coefficients(self) -> np.ndarray:
        """The totals form's prior (compute, memory, overhead)."""
        return np.array([1 / COMPUTE_EFFICIENCY, 1 / BANDWIDTH_EFFICIENCY, self.overhead_prior()])

    def kernel_prior(self) -> np.ndarray:
        """The kernel form's prior, in KERNEL_TERMS order."""
        compute, bandwidth = 1 / COMPUTE_EFFICIENCY, 1 / BANDWIDTH_EFFICIENCY
        return np.array([compute, bandwidth, bandwidth, bandwidth, bandwidth, compute, self.overhead_prior()])

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
    """The totals form: seconds its three terms take at 100 % of the datasheet (the op term in µs units)."""
    compute_s = costs.flops / (specs.peak_gflops(precision) * 1e9)
    moved = costs.weight_bytes_at(precision) + 2 * costs.activation_bytes_at(precision)  # written, then read
    memory_s = moved / (specs.memory_bandwidth_gbps * 1e9)
    return np.array([compute_s, memory_s, costs.ops * OP_UNIT_S])


PRIOR_COEFFICIENTS = DeviceSpecs(1, 1, 1).prior_coefficients()  # with an accelerator (a CPU's: cpu_only=True)


class _Kernels:
    """The kernel form's inputs for a set of costs, as arrays: each distinct convolution of each network (its
    datasheet seconds for compute, weights and activations, its count, which network), and per network the
    datasheet seconds of its other terms."""

    def __init__(self, costs: list[Costs], specs: DeviceSpecs, precision: str):
        flops_s = 1 / (specs.peak_gflops(precision) * 1e9)
        bytes_s = bytes_per_value(precision) / 4 / (specs.memory_bandwidth_gbps * 1e9)
        convs = [(i, *conv) for i, c in enumerate(costs) for conv in c.kernels["conv"]]
        table = np.array(convs, dtype=float).reshape(-1, 5)
        self.network = table[:, 0].astype(int)
        self.compute = table[:, 1] * flops_s
        self.activations, self.weights = table[:, 2] * bytes_s, table[:, 3] * bytes_s
        self.count = table[:, 4]
        # powered once: seconds() runs hundreds of times per fit, and x ** 4 is cheaper done here than inside it
        self.compute_pow, self.weights_pow = self.compute ** SMOOTH_MAX, self.weights ** SMOOTH_MAX
        k = [c.kernels for c in costs]
        self.rest = np.array([[x["gemm_bytes"] * bytes_s, x["memory_bytes"] * bytes_s,
                               x["transcendental_values"] * TRANSCENDENTAL_FLOPS * flops_s, x["kernels"] * OP_UNIT_S]
                              for x in k]).reshape(-1, 4)
        self.size = len(costs)

    def seconds(self, coefficients: np.ndarray) -> np.ndarray:
        a, w, m, *rest = coefficients
        conv = np.sqrt(np.sqrt(a ** SMOOTH_MAX * self.compute_pow + w ** SMOOTH_MAX * self.weights_pow))
        per_conv = self.count * (conv + m * self.activations)
        return np.bincount(self.network, per_conv, minlength=self.size) + self.rest @ np.array(rest)


class _Totals:
    def __init__(self, costs: list[Costs], specs: DeviceSpecs, precision: str):
        self.x = np.array([features(c, specs, precision) for c in costs]).reshape(-1, 3)

    def seconds(self, coefficients: np.ndarray) -> np.ndarray:
        return self.x @ coefficients


def _fit_coefficients(terms, latencies_s: np.ndarray, prior: np.ndarray, prior_weight: float, *,
                      keep: np.ndarray | None = None, start: np.ndarray | None = None) -> np.ndarray:
    """keep: which networks of `terms` count (leave-one-out drops one without rebuilding the terms); start: where
    the search begins (the prior, or a nearby fit, which converges in a few steps to the same optimum)."""
    y = np.log(latencies_s)
    keep = np.ones(len(y), dtype=bool) if keep is None else keep
    weight = math.sqrt(prior_weight)
    log_prior = np.log(prior)

    def residuals(theta):
        misfit = np.log(terms.seconds(np.exp(theta))) - y
        return np.concatenate([misfit[keep], weight * (theta - log_prior)])

    x0 = log_prior if start is None else np.log(start)
    return np.exp(least_squares(residuals, x0, method="lm").x)


def descriptor(costs: Costs) -> np.ndarray:
    """Where a network sits for the residual correction: its log costs and its share of 1×1-convolution FLOPs."""
    share = costs.extra.get("conv1x1_flops", 0.0) / costs.flops if costs.flops else 0.0
    values = (costs.flops, costs.weight_bytes, costs.activation_bytes, costs.ops)
    return np.array([math.log(max(v, 1.0)) for v in values] + [share]) / np.array(RESIDUAL_SCALES)


@dataclass
class _Form:
    """One form of the model fitted to the records it can read: its coefficients and its leftover residuals."""

    kind: type
    coefficients: np.ndarray
    records: int = 0
    neighbours: np.ndarray = field(default_factory=lambda: np.zeros((0, len(RESIDUAL_SCALES))))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def fit(cls, kind, prior, specs, precision, records: list[Record]) -> "_Form":
        if not records:
            return cls(kind, prior)
        return cls.fit_terms(kind, prior, *cls.inputs(kind, records, specs, precision))

    @staticmethod
    def inputs(kind, records: list[Record], specs, precision) -> tuple:
        """What a fit reads of the records: their terms, latencies in seconds and descriptors."""
        return (kind([r.costs for r in records], specs, precision), np.array([r.latency_ms / 1000 for r in records]),
                np.array([descriptor(r.costs) for r in records]))

    @classmethod
    def fit_terms(cls, kind, prior, terms, latencies_s, descriptors, *, keep=None, start=None) -> "_Form":
        """The fit to the networks of `terms` that `keep` selects (all by default)."""
        keep = np.ones(len(latencies_s), dtype=bool) if keep is None else keep
        weight = KERNEL_PRIOR_WEIGHT if kind is _Kernels else PRIOR_WEIGHT
        coefficients = _fit_coefficients(terms, latencies_s, prior, weight, keep=keep, start=start)
        left = (np.log(latencies_s) - np.log(terms.seconds(coefficients)))[keep]
        return cls(kind, coefficients, int(keep.sum()), descriptors[keep], left)

    def base_ms(self, costs: Costs, specs, precision) -> float:
        return float(self.kind([costs], specs, precision).seconds(self.coefficients)[0]) * 1000

    def correction(self, costs: Costs) -> float:
        if not len(self.residuals):
            return 1.0
        distance = ((self.neighbours - descriptor(costs)) ** 2).sum(axis=1)
        kernel = np.exp(-distance / 2)
        return math.exp(float(kernel @ self.residuals) / (float(kernel.sum()) + RESIDUAL_SHRINK))


def has_kernels(costs: Costs) -> bool:
    return bool(costs.kernels.get("conv") is not None)


@dataclass
class LatencyModel:
    specs: DeviceSpecs
    precision: str
    records: int = 0
    fit_error: float | None = None  # median |relative error| on the records it was fitted to
    kernels: _Form | None = None  # None: the device's prior
    totals: _Form | None = None

    def __post_init__(self):
        self.kernels = self.kernels or _Form(_Kernels, self.specs.kernel_prior())
        self.totals = self.totals or _Form(_Totals, self.specs.prior_coefficients())

    @classmethod
    def fit(cls, specs: DeviceSpecs, precision: str, records: list[Record]) -> "LatencyModel":
        """The kernel form fitted to the records with a kernel list, the totals form to every record."""
        usable = [r for r in records if r.latency_ms > 0]
        if not usable:
            return cls(specs, precision)
        listed = [r for r in usable if has_kernels(r.costs)]
        kernels = _Form.fit(_Kernels, specs.kernel_prior(), specs, precision, listed)
        totals = _Form.fit(_Totals, specs.prior_coefficients(), specs, precision, usable)
        model = cls(specs, precision, len(usable), kernels=kernels, totals=totals)
        model.fit_error = float(np.median([abs(model.predict_ms(r.costs) / r.latency_ms - 1) for r in usable]))
        return model

    def _form(self, costs: Costs) -> _Form:
        listed = has_kernels(costs) and self.kernels.records >= KERNEL_FORM_MIN_RECORDS
        return self.kernels if listed else self.totals

    def roofline_ms(self, costs: Costs) -> float:
        """The fitted per-kernel (or totals) roofline alone, without the residual correction."""
        return self._form(costs).base_ms(costs, self.specs, self.precision)

    def correction(self, costs: Costs) -> float:
        """exp(r): the factor the records near this network put on the roofline (1 with no record near)."""
        return self._form(costs).correction(costs)

    def predict_ms(self, costs: Costs) -> float:
        return self.roofline_ms(costs) * self.correction(costs)

    def prior_ms(self, costs: Costs) -> float:
        return LatencyModel(self.specs, self.precision).roofline_ms(costs)

    def confidence(self) -> str:
        if not self.records:
            return "datasheet prior only (no measured record yet)"
        return f"fitted to {self.records} measured record{'s' if self.records != 1 else ''}"

    def describe(self) -> dict:
        kernel = dict(zip(KERNEL_TERMS, self.kernels.coefficients.tolist(), strict=True))
        total = dict(zip(TOTAL_TERMS, self.totals.coefficients.tolist(), strict=True))
        return {"records": self.records, "kernel_records": self.kernels.records,
                "compute_efficiency": 1 / kernel["conv compute"],
                "weight_bandwidth_efficiency": 1 / kernel["conv weights"],
                "kernel_overhead_us": kernel["per-kernel overhead"] * OP_UNIT_S * 1e6, "kernel_coefficients": kernel,
                "totals_coefficients": total, "fit_error": self.fit_error, "confidence": self.confidence()}


def leave_one_out(specs: DeviceSpecs, precision: str, records: list[Record]) -> list[tuple[float, int]]:
    """For each record: (the latency the model fitted to all the other records predicts for it, how many records
    back that prediction) — the error a new record would have had, as the device page shows it.

    The same predictions as `LatencyModel.fit(others).predict_ms(record)` one record at a time, which costs a whole
    fit per record (~0.25 s each with 200 records). Here each form's terms are built once, a record is left out
    by masking it, and each refit starts from the fit to all the records, a few steps from its own optimum."""
    # measured latencies are positive (benchmark_record_add refuses others), so every record is one a fit reads
    listed = [r for r in records if has_kernels(r.costs)]
    forms = {}
    for kind, prior, members in ((_Kernels, specs.kernel_prior(), listed),
                                 (_Totals, specs.prior_coefficients(), records)):
        if members:
            terms, latencies, descriptors = _Form.inputs(kind, members, specs, precision)
            full = _Form.fit_terms(kind, prior, terms, latencies, descriptors)
            forms[kind] = (prior, terms, latencies, descriptors, full, {id(r): i for i, r in enumerate(members)})
    others = len(records) - 1
    out = []
    for record in records:
        kernel_others = len(listed) - has_kernels(record.costs)
        kind = _Kernels if has_kernels(record.costs) and kernel_others >= KERNEL_FORM_MIN_RECORDS else _Totals
        prior, terms, latencies, descriptors, full, index = forms[kind]
        if others == 0:
            form = _Form(kind, prior)
        else:
            keep = np.ones(len(latencies), dtype=bool)
            keep[index[id(record)]] = False
            form = _Form.fit_terms(kind, prior, terms, latencies, descriptors, keep=keep, start=full.coefficients)
        out.append((form.base_ms(record.costs, specs, precision) * form.correction(record.costs), others))
    return out
