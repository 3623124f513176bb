"""A PyTorch model → a graph, by torch.fx: every layer call, function (add, cat, flatten) and the blocks to fold.

Blocks are the model's own composite modules (a ResNet's Bottleneck, a DenseNet's dense layer, block and
transition): any module with children whose class is not a bare Sequential/ModuleList/ModuleDict. A ResNet-50
so reads as its stem, 16 bottleneck blocks and its head.
"""

import torch
from torch import fx, nn

from . import layers
from .infer import infer

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class GraphError(ValueError):
    """The model holds something the graph cannot represent (an unknown layer or function)."""


def graph_of(model: nn.Module, input_size: int, *, name: str = "", num_classes: int | None = None) -> dict:
    """The model as a graph, shapes, parameter counts and FLOPs inferred at batch 1 × 3 × input_size²."""
    traced = fx.symbolic_trace(model)
    modules = dict(model.named_modules())
    blocks = _blocks(modules)
    nodes = []
    for node in traced.graph.nodes:
        nodes.append(_node(node, modules, blocks))
    graph = {
        "name": name or type(model).__name__, "input_size": input_size, "num_classes": num_classes,
        "nodes": nodes,
        "blocks": [{"id": path, "type": type(modules[path]).__name__.lstrip("_"), "parent": _parent_block(path, blocks)}
                   for path in sorted(blocks, key=_module_order(modules))],
    }
    graph["blocks"] += _stages(nodes, modules)
    return infer(graph)


POOLS = ("MaxPool2d", "AvgPool2d")


def _stages(nodes: list[dict], modules: dict) -> list[dict]:
    """Fold a plain Sequential of layers (VGG's features and classifier) that holds no block: into stages that
    each end at a pooling layer, or into one block when it has no pool."""
    by_container: dict[str, list[dict]] = {}
    for node in nodes:
        if node.get("kind") == "module" and node.get("block") is None and "." in node["target"]:
            container = node["target"].rsplit(".", 1)[0]
            if type(modules.get(container)) is nn.Sequential:
                by_container.setdefault(container, []).append(node)
    blocks = []
    for container, members in by_container.items():
        if len(members) < 3:
            continue
        groups, current = [], []
        for node in members:
            current.append(node)
            if node["op"] in POOLS:
                groups.append(current)
                current = []
        if current:
            groups.append(current)
        if len(groups) == 1:
            blocks.append({"id": container, "type": "Sequential", "parent": None})
            for node in members:
                node["block"] = container
            continue
        for number, group in enumerate(groups, start=1):
            block = f"{container}.stage{number}"
            blocks.append({"id": block, "type": "Stage", "parent": None})
            for node in group:
                node["block"] = block
    return blocks


def _module_order(modules: dict):
    order = {path: i for i, path in enumerate(modules)}
    return lambda path: order[path]


def _blocks(modules: dict) -> set[str]:
    return {path for path, module in modules.items()
            if path and type(module) not in CONTAINERS and any(True for _ in module.children())}


def _parent_block(path: str, blocks: set[str]) -> str | None:
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in blocks:
            return candidate
    return None


def _innermost_block(path: str, blocks: set[str], *, include_self: bool) -> str | None:
    if include_self and path in blocks:
        return path
    return _parent_block(path, blocks)


def _node(node: fx.Node, modules: dict, blocks: set[str]) -> dict:
    out = {"id": node.name, "inputs": [n.name for n in node.all_input_nodes]}
    if node.op == "placeholder":
        return {**out, "kind": "input", "op": "input"}
    if node.op == "output":
        return {**out, "kind": "output", "op": "output", "args": _encode(node.args[0])}
    out.update(args=_encode(list(node.args)), kwargs=_encode(dict(node.kwargs)))
    if node.op == "call_module":
        module = modules[node.target]
        if not layers.supported(module):
            raise GraphError(f"{node.target}: {type(module).__name__} layers are not supported by the editor.")
        return {**out, "kind": "module", "op": type(module).__name__, "target": node.target,
                "params": layers.params_of(module), "block": _innermost_block(node.target, blocks,
                                                                               include_self=False)}
    stack = _module_stack(node)
    block = _innermost_block(stack, blocks, include_self=True) if stack else None
    if node.op == "call_function":
        name = layers.function_name(node.target)
        if name is None:
            raise GraphError(f"{node.name}: the function {getattr(node.target, '__name__', node.target)} is not "
                             "supported by the editor.")
        return {**out, "kind": "function", "op": name, "block": block}
    if node.op == "call_method" and node.target in layers.METHODS:
        return {**out, "kind": "method", "op": node.target, "block": block}
    raise GraphError(f"{node.name}: {node.op} {node.target} is not supported by the editor.")


def _module_stack(node: fx.Node) -> str:
    """The path of the innermost module whose forward made this call ('' at the top)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    value = list(stack.values())[-1]
    path = value[0] if isinstance(value, tuple) else str(value)
    return path if isinstance(path, str) else ""


def _encode(value):
    if isinstance(value, fx.Node):
        return {"ref": value.name}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.dtype | torch.device):
        raise GraphError(f"Cannot store {value!r} in a graph.")
    raise GraphError(f"Cannot store {type(value).__name__} {value!r} in a graph.")
