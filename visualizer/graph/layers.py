"""The layer types a graph may hold: how to read a layer's parameters from a module, build it again, and count it.

Each type lists its constructor parameters in the order the editor shows them. Values are JSON: ints, floats,
bools, and lists for per-dimension sizes (a square kernel reads as one int).
"""

import operator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LayerType:
    name: str
    cls: type
    params: tuple[str, ...]
    category: str  # "conv", "norm", "activation", "pool", "linear", "shape", "regularise"
    defaults: tuple = ()  # (param, value) pairs the palette starts from


def _layer_types() -> dict[str, LayerType]:
    types = [
        LayerType("Conv2d", nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                                        "dilation", "groups", "bias"), "conv",
                  (("kernel_size", 3), ("stride", 1), ("padding", 1), ("bias", False))),
        LayerType("BatchNorm2d", nn.BatchNorm2d, ("num_features", "eps", "momentum"), "norm"),
        LayerType("ReLU", nn.ReLU, ("inplace",), "activation"),
        LayerType("ReLU6", nn.ReLU6, ("inplace",), "activation"),
        LayerType("LeakyReLU", nn.LeakyReLU, ("negative_slope", "inplace"), "activation",
                  (("negative_slope", 0.1),)),
        LayerType("SiLU", nn.SiLU, ("inplace",), "activation"),
        LayerType("GELU", nn.GELU, (), "activation"),
        LayerType("Hardswish", nn.Hardswish, ("inplace",), "activation"),
        LayerType("Sigmoid", nn.Sigmoid, (), "activation"),
        LayerType("MaxPool2d", nn.MaxPool2d, ("kernel_size", "stride", "padding", "ceil_mode"), "pool",
                  (("kernel_size", 2), ("stride", 2))),
        LayerType("AvgPool2d", nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode"), "pool",
                  (("kernel_size", 2), ("stride", 2))),
        LayerType("AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d, ("output_size",), "pool", (("output_size", 1),)),
        LayerType("AdaptiveMaxPool2d", nn.AdaptiveMaxPool2d, ("output_size",), "pool", (("output_size", 1),)),
        LayerType("Linear", nn.Linear, ("in_features", "out_features", "bias"), "linear"),
        LayerType("Dropout", nn.Dropout, ("p",), "regularise", (("p", 0.2),)),
        LayerType("Identity", nn.Identity, (), "shape"),
        LayerType("Flatten", nn.Flatten, ("start_dim", "end_dim"), "shape"),
    ]
    return {t.name: t for t in types}


LAYERS = _layer_types()
PALETTE = [name for name in LAYERS if name not in ("Identity", "Flatten")]

# Functions and methods a traced forward may call, by the name a graph stores. Only these are rebuilt.
FUNCTIONS = {
    "add": operator.add,
    "iadd": operator.add,  # `out += identity` in a traced forward: rebuilt out of place
    "mul": operator.mul,
    "torch.add": torch.add,
    "torch.cat": torch.cat,
    "torch.flatten": torch.flatten,
    "relu": F.relu,
    "adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "getitem": operator.getitem,
}
METHODS = {"flatten", "view", "reshape", "size", "mean", "relu"}


def function_name(target) -> str | None:
    """The name a graph stores for a traced function, or None when the graph cannot rebuild it."""
    if target is operator.iadd:
        return "iadd"
    for name, function in FUNCTIONS.items():
        if function is target and name != "iadd":
            return name
    return None


def _plain(value):
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        return value[0]  # (3, 3) reads as 3
    return value


def params_of(module: nn.Module) -> dict:
    """A module's constructor parameters, as JSON."""
    kind = LAYERS[type(module).__name__]
    out = {}
    for param in kind.params:
        if param == "bias":
            out[param] = module.bias is not None
        else:
            out[param] = _plain(getattr(module, param))
    return out


def supported(module: nn.Module) -> bool:
    return type(module).__name__ in LAYERS and type(module) is LAYERS[type(module).__name__].cls


def construct(op: str, params: dict) -> nn.Module:
    """A fresh module of this type; ValueError names a bad parameter."""
    kind = LAYERS.get(op)
    if kind is None:
        raise ValueError(f"Unknown layer type {op!r}; known: {', '.join(LAYERS)}.")
    unknown = set(params) - set(kind.params)
    if unknown:
        raise ValueError(f"{op} has no parameter {', '.join(sorted(unknown))}.")
    _validate(op, params)
    try:
        return kind.cls(**params)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{op}({_call(params)}): {exc}") from None


POSITIVE = ("in_channels", "out_channels", "kernel_size", "stride", "dilation", "groups", "num_features",
            "in_features", "out_features", "output_size")
NON_NEGATIVE = ("padding",)


def _validate(op: str, params: dict) -> None:
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        if name in POSITIVE + NON_NEGATIVE:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{op}({_call(params)}): {name} must be a whole number")
            if any(v < (1 if name in POSITIVE else 0) for v in values):
                raise ValueError(f"{op}({_call(params)}): {name} must be at least {1 if name in POSITIVE else 0}")
    if op == "Dropout" and not 0 <= params.get("p", 0.5) < 1:
        raise ValueError(f"Dropout(p={params['p']}): p must be in [0, 1)")


def _call(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def palette_defaults(op: str, channels: int | None, features: int | None) -> dict:
    """Parameters for a layer dropped after a node whose output has this many channels (or features)."""
    kind = LAYERS[op]
    params = dict(kind.defaults)
    if op == "Conv2d":
        params.update(in_channels=channels, out_channels=channels)
    elif op == "BatchNorm2d":
        params.update(num_features=channels)
    elif op == "Linear":
        params.update(in_features=features, out_features=features)
    return {k: params[k] for k in kind.params if k in params}


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops(module: nn.Module, output: torch.Tensor) -> int:
    """2 x multiply-accumulates of convolutions and linear layers (the zoo's and the recommender's rule)."""
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return 2 * output.numel() * kernel
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0
