"""What a candidate network costs to run, as the recommender's models read it. Django-free.

The app shell measures these from the model itself (forward hooks on a model built on PyTorch's meta device, so
nothing is allocated or computed) and caches them per architecture signature; this module only holds them.
"""

from dataclasses import asdict, dataclass, field

BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "int8": 1}


def bytes_per_value(precision: str) -> int:
    try:
        return BYTES_PER_VALUE[precision]
    except KeyError:
        raise ValueError(f"Unknown precision {precision!r}; known: {', '.join(BYTES_PER_VALUE)}.") from None


@dataclass(frozen=True)
class Costs:
    """One forward pass at batch 1. Byte figures are at FP32; `at(precision)` scales them."""

    params: int
    flops: float  # 2 x multiply-accumulates of convolutions and linear layers
    weight_bytes: float
    activation_bytes: float  # every layer's output written once (and read by the next): the memory traffic
    peak_activation_bytes: float  # the most activation memory alive at one moment
    layers: int  # weighted layers (convolution, linear)
    ops: int  # every leaf operation executed (also norms, activations, pools): per-op runtime overhead
    signature: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    # The kernels a runtime executes (tango_common.op_counter.KernelCounter.profile); empty where the costs were
    # counted another way (an edited detector's rows, a supernet's subnets): the latency model then reads the totals.
    kernels: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Costs":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def weight_bytes_at(self, precision: str) -> float:
        return self.weight_bytes * bytes_per_value(precision) / 4

    def activation_bytes_at(self, precision: str) -> float:
        return self.activation_bytes * bytes_per_value(precision) / 4

    def peak_activation_bytes_at(self, precision: str) -> float:
        return self.peak_activation_bytes * bytes_per_value(precision) / 4
