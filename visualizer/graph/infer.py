"""Shape inference over a graph: every node's output shape, parameter count and FLOPs, and what does not fit.

Layers are built on PyTorch's meta device and run on meta tensors, so nothing is allocated or computed. Before a
layer runs, its input is checked against its parameters, so an edit that breaks the network names the node and
the mismatch ("layer3.1.conv1 expects 512 input channels, gets 256"). A node downstream of a broken one gets no
shape (and no second message).
"""

import copy
import functools
import json

import torch
from torch import nn

from . import layers

BATCH = 1
SAME_SHAPE = {"BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "SiLU", "GELU", "Hardswish", "Sigmoid", "Dropout",
              "Identity"}


def label(node: dict) -> str:
    """How messages name a node: a layer by its module path, an operation by its block and kind (layer1.0.add)."""
    if node.get("target"):
        return node["target"]
    if node.get("block"):
        return f"{node['block']}.{node['op'].rsplit('.', 1)[-1]}"
    return node["id"]


def decode(value, env: dict):
    if isinstance(value, dict):
        if "ref" in value:
            return env[value["ref"]]
        if "tuple" in value:
            return tuple(decode(v, env) for v in value["tuple"])
        if "dict" in value:
            return {k: decode(v, env) for k, v in value["dict"].items()}
    if isinstance(value, list):
        return [decode(v, env) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def _meta_layer(op: str, params_json: str) -> nn.Module:
    with torch.device("meta"):
        return layers.construct(op, json.loads(params_json)).eval()


def meta_layer(op: str, params: dict) -> nn.Module:
    return _meta_layer(op, json.dumps(params, sort_keys=True))


class _Broken(Exception):
    pass


def infer(graph: dict) -> dict:
    """A copy of the graph with shape, param_count and flops on every node, totals, and errors (a list of
    {"node", "message"}, empty when the network is consistent)."""
    graph = copy.deepcopy(graph)
    env: dict = {}
    errors: list[dict] = []
    counted_targets: set[str] = set()
    params = flops = activations = peak = ops = 0
    size = graph["input_size"]
    by_id = {node["id"]: node for node in graph["nodes"]}
    for node in graph["nodes"]:
        node.pop("shape", None)
        if node["kind"] == "input":
            env[node["id"]] = network_input = torch.empty(BATCH, 3, size, size, device="meta")
            node["shape"] = [BATCH, 3, size, size]
            continue
        if any(env.get(ref) is None for ref in node["inputs"]):
            env[node["id"]] = None  # downstream of a broken node: no shape, no second message
            continue
        if node["kind"] == "output":
            out = decode(node["args"], env)
            node["shape"] = _shape(out)
            continue
        try:
            out, node_params, node_flops = _run(node, env, by_id)
        except _Broken as exc:
            errors.append({"node": node["id"], "message": str(exc)})
            env[node["id"]] = None
            node["param_count"], node["flops"] = 0, 0
            continue
        env[node["id"]] = out
        node["shape"] = _shape(out)
        node["flops"] = node_flops
        node["param_count"] = node_params
        flops += node_flops
        if node["kind"] == "module":  # what the recommender's profile counts: every layer call's output
            ops += 1
            activations += out.numel()
            live = {id(env[ref]): env[ref].numel() for ref in node["inputs"] if isinstance(env.get(ref), torch.Tensor)}
            live[id(network_input)] = network_input.numel()  # held by the model's forward throughout
            live[id(out)] = out.numel()
            peak = max(peak, sum(live.values()))
        if node.get("target") not in counted_targets:  # a layer called twice (a shared ReLU) has its weights once
            params += node_params
            counted_targets.add(node.get("target"))
    graph["errors"] = errors
    graph["totals"] = {"params": params, "flops": flops,
                       "layers": sum(1 for n in graph["nodes"] if n.get("op") in ("Conv2d", "Linear")),
                       "nodes": len(graph["nodes"]), "ops": ops, "activation_values": activations,
                       "peak_values": peak}
    return graph


def _shape(value):
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    return None


def _run(node: dict, env: dict, by_id: dict):
    args = decode(node.get("args", []), env)
    kwargs = decode(node.get("kwargs", {"dict": {}}), env)
    name = label(node)
    if node["kind"] == "module":
        try:
            module = meta_layer(node["op"], node["params"])
        except ValueError as exc:
            raise _Broken(f"{name}: {exc}") from None
        x = args[0]
        _check_layer(name, node["op"], node["params"], x)
        if node["op"] in SAME_SHAPE and len(args) == 1 and not kwargs:
            # The input's shape (running a norm on the meta device is slow and tells nothing more); an in-place
            # layer hands back its input tensor itself, as it does when it runs.
            out = x if node["params"].get("inplace") else torch.empty_like(x)
        else:
            out = _call(name, lambda: module(*args, **kwargs))
        return out, layers.param_count(module), layers.flops(module, out)
    if node["kind"] == "function":
        _check_function(node, args, by_id)
        function = layers.FUNCTIONS[node["op"]]
        return _call(name, lambda: function(*args, **kwargs)), 0, 0
    target = args[0]
    return _call(name, lambda: getattr(target, node["op"])(*args[1:], **kwargs)), 0, 0


def _call(name: str, thunk):
    try:
        return thunk()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _Broken(f"{name}: {first}") from None


def _check_layer(name: str, op: str, params: dict, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise _Broken(f"{name} expects a tensor input")
    if op in ("Conv2d", "BatchNorm2d") and x.dim() != 4:
        raise _Broken(f"{name} expects a 4-D input (batch, channels, height, width), gets shape {list(x.shape)}")
    if op == "Conv2d" and x.shape[1] != params["in_channels"]:
        raise _Broken(f"{name} expects {params['in_channels']} input channels, gets {x.shape[1]}")
    if op == "BatchNorm2d" and x.shape[1] != params["num_features"]:
        raise _Broken(f"{name} expects {params['num_features']} channels, gets {x.shape[1]}")
    if op == "Linear" and x.shape[-1] != params["in_features"]:
        raise _Broken(f"{name} expects {params['in_features']} input features, gets {x.shape[-1]}")


def _check_function(node: dict, args, by_id: dict) -> None:
    name = label(node)
    if node["op"] in ("add", "iadd", "mul", "torch.add"):
        a, b = args[0], args[1]
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape != b.shape:
            sources = node["inputs"] + node["inputs"][:1]
            raise _Broken(f"{name} adds {list(a.shape)} from {label(by_id[sources[0]])} to {list(b.shape)} from "
                          f"{label(by_id[sources[1]])}: the shapes must match")
    if node["op"] == "torch.cat":
        tensors = args[0]
        dim = args[1] if len(args) > 1 else 0
        shapes = [list(t.shape) for t in tensors]
        rest = [s[:dim] + s[dim + 1:] for s in shapes]
        if any(r != rest[0] for r in rest):
            raise _Broken(f"{name} concatenates {shapes} along dimension {dim}: the other dimensions must match")
