"""Edits of a graph, each a small JSON object, applied in order and then shape-checked.

    {"op": "set", "node": ID, "params": {...}}          change a layer's parameters
    {"op": "resize", "node": ID, "channels": N}         change a layer's width and carry it to the layers it feeds
    {"op": "insert", "after": ID, "layer": TYPE, "params": {...}}   a new layer after a node (params optional)
    {"op": "remove", "node": ID}                        a layer out, its consumers fed by its input
    {"op": "replace", "node": ID, "layer": TYPE, "params": {...}}   another layer type in the same place
    {"op": "rewire", "node": ID, "input": OLD, "to": NEW}  feed a node from another (earlier) node
    {"op": "group", "nodes": [ID, ...], "name": NAME}    fold nodes into a new block
    {"op": "ungroup", "block": NAME}                     a block's members go to its parent

An edit that cannot apply (an unknown node, a bad parameter) raises EditError naming it. An edit that applies but
breaks the network (a channel count that no longer matches) is not refused: `errors` of the result names the
node and the mismatch, so the editor shows it and the user fixes it with the next edit.
"""

import copy
import re

from . import layers
from .infer import infer, label, meta_layer

CHANNEL_PRESERVING = {"BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU", "SiLU", "GELU", "Hardswish", "Sigmoid",
                      "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Dropout", "Identity"}
BLOCK_NAME = re.compile(r"\w[\w .-]{0,59}")
OPS = ("set", "resize", "insert", "remove", "replace", "rewire", "group", "ungroup")


class EditError(ValueError):
    """An edit that cannot be applied; the message says which and why."""


def apply(graph: dict, edits: list[dict]) -> dict:
    """The graph after the edits, re-inferred (see `errors` and `totals`)."""
    graph = copy.deepcopy(graph)
    for index, edit in enumerate(edits, start=1):
        if not isinstance(edit, dict) or edit.get("op") not in OPS:
            raise EditError(f"Edit {index}: op must be one of {', '.join(OPS)}.")
        try:
            graph = _APPLY[edit["op"]](graph, edit)
        except KeyError as exc:
            raise EditError(f"Edit {index} ({edit['op']}): missing {exc}.") from None
        except (TypeError, AttributeError, IndexError) as exc:
            raise EditError(f"Edit {index} ({edit['op']}): malformed ({exc}).") from None
        except EditError as exc:
            raise EditError(f"Edit {index} ({edit['op']}): {exc}") from None
    return infer(graph)


def _nodes(graph: dict) -> dict:
    return {node["id"]: node for node in graph["nodes"]}


def _node(graph: dict, node_id: str) -> dict:
    node = _nodes(graph).get(node_id)
    if node is None:
        raise EditError(f"no node {node_id!r}")
    return node


def _layer(graph: dict, node_id: str) -> dict:
    node = _node(graph, node_id)
    if node["kind"] != "module":
        raise EditError(f"{label(node)} is not a layer ({node['op']}); only layers have parameters")
    return node


def _checked_params(op: str, params: dict) -> dict:
    if not isinstance(params, dict):
        raise EditError("params must be an object")
    try:
        meta_layer(op, params)
    except ValueError as exc:
        raise EditError(str(exc)) from None
    return params


def _set(graph, edit):
    node = _layer(graph, edit["node"])
    params = _checked_params(node["op"], {**node["params"], **edit["params"]})
    for other in graph["nodes"]:  # a layer called twice (a shared ReLU) is one module
        if other.get("target") == node["target"]:
            other["params"] = dict(params)
    return graph


def _width_param(op: str) -> str:
    return {"Conv2d": "out_channels", "Linear": "out_features", "BatchNorm2d": "num_features"}.get(op, "")


def _resize(graph, edit):
    node = _layer(graph, edit["node"])
    channels = edit["channels"]
    if not isinstance(channels, int) or channels < 1:
        raise EditError("channels must be a positive whole number")
    if not _width_param(node["op"]) or node["op"] == "BatchNorm2d":
        raise EditError(f"{label(node)} is a {node['op']}: only convolutions and linear layers have a width")
    params = {**node["params"], _width_param(node["op"]): channels}
    if node["op"] == "Conv2d" and node["params"]["groups"] == node["params"]["in_channels"] > 1:
        raise EditError(f"{label(node)} is depthwise: resize the layer before it")
    _set(graph, {"node": node["id"], "params": params})
    _carry_width(graph, node["id"], channels, node["op"] == "Linear", seen=set())
    return graph


def _consumers(graph: dict, node_id: str) -> list[dict]:
    return [n for n in graph["nodes"] if node_id in n["inputs"]]


def _carry_width(graph: dict, node_id: str, channels: int, features: bool, seen: set) -> None:
    """Follow the output through layers that keep its width, up to the next layers that read it."""
    for consumer in _consumers(graph, node_id):
        if consumer["id"] in seen:
            continue
        seen.add(consumer["id"])
        op = consumer["op"]
        if op == "BatchNorm2d" and not features:
            _set(graph, {"node": consumer["id"], "params": {"num_features": channels}})
            _carry_width(graph, consumer["id"], channels, features, seen)
        elif op == "Conv2d" and not features:
            params = {"in_channels": channels}
            if consumer["params"]["groups"] == consumer["params"]["in_channels"] > 1:  # depthwise: keeps width
                params.update(groups=channels, out_channels=channels)
                _set(graph, {"node": consumer["id"], "params": params})
                _carry_width(graph, consumer["id"], channels, features, seen)
            else:
                _set(graph, {"node": consumer["id"], "params": params})
        elif op == "Linear":
            if features or _global_pooled(graph, consumer):
                _set(graph, {"node": consumer["id"], "params": {"in_features": channels}})
        elif op in CHANNEL_PRESERVING or op in ("flatten", "torch.flatten", "Flatten", "relu",
                                                "adaptive_avg_pool2d"):
            flattened = op in ("flatten", "torch.flatten", "Flatten")
            _carry_width(graph, consumer["id"], channels, features or flattened, seen)
        # add, cat and anything else: the other inputs decide; shape inference says when they disagree


def _global_pooled(graph: dict, linear: dict) -> bool:
    """Whether the linear layer reads a globally pooled map (so its features are the channels)."""
    node = linear
    while node["inputs"]:
        node = _nodes(graph)[node["inputs"][0]]
        if node["op"] in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
            return node["params"]["output_size"] in (1, [1, 1])
        if node["op"] == "adaptive_avg_pool2d":
            return True
        if node["op"] not in ("flatten", "torch.flatten", "Flatten", "Dropout", "Identity"):
            return False
    return False


def _new_id(graph: dict, base: str) -> str:
    taken = {n["id"] for n in graph["nodes"]} | {n.get("target") for n in graph["nodes"]}
    i = 1
    while f"{base}_{i}" in taken or f"{base}_{i}".replace(".", "_") in taken:
        i += 1
    return f"{base}_{i}"


def _single_tensor_input(node: dict) -> bool:
    return len(node["inputs"]) == 1 and node.get("args") == [{"ref": node["inputs"][0]}] \
        and not (node.get("kwargs") or {}).get("dict")


def _insert(graph, edit):
    after = _node(graph, edit["after"])
    if after["kind"] == "output":
        raise EditError("nothing can follow the output")
    op = edit["layer"]
    if op not in layers.LAYERS:
        raise EditError(f"unknown layer type {op!r}; known: {', '.join(layers.LAYERS)}")
    shape = infer(graph) if "shape" not in after else graph
    after = _node(shape, edit["after"])
    out_shape = after.get("shape") or []
    channels = out_shape[1] if len(out_shape) == 4 else None
    features = out_shape[-1] if len(out_shape) == 2 else None
    params = _checked_params(op, {**layers.palette_defaults(op, channels, features), **(edit.get("params") or {})})
    block = after.get("block") if after["kind"] != "input" else None
    target = _new_id(graph, f"{block}.{op.lower()}" if block else op.lower())
    node_id = target.replace(".", "_")
    new = {"id": node_id, "kind": "module", "op": op, "target": target, "params": params,
           "inputs": [after["id"]], "args": [{"ref": after["id"]}], "kwargs": {"dict": {}}, "block": block,
           "added": True}
    for consumer in _consumers(graph, after["id"]):
        _repoint(consumer, after["id"], node_id)
    position = next(i for i, n in enumerate(graph["nodes"]) if n["id"] == after["id"]) + 1
    graph["nodes"].insert(position, new)
    return graph


def _repoint(node: dict, old: str, new: str) -> None:
    def swap(value):
        if isinstance(value, dict):
            if value.get("ref") == old:
                return {"ref": new}
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    for key in ("args", "kwargs"):
        if key in node:
            node[key] = swap(node[key])
    node["inputs"] = list(dict.fromkeys(new if ref == old else ref for ref in node["inputs"]))


def _remove(graph, edit):
    node = _node(graph, edit["node"])
    if node["kind"] in ("input", "output"):
        raise EditError(f"the {node['kind']} cannot be removed")
    if not _single_tensor_input(node):
        raise EditError(f"{label(node)} joins several inputs; rewire or remove its branches instead")
    source = node["inputs"][0]
    for consumer in _consumers(graph, node["id"]):
        _repoint(consumer, node["id"], source)
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != node["id"]]
    return graph


def _replace(graph, edit):
    node = _layer(graph, edit["node"])
    op = edit["layer"]
    if op not in layers.LAYERS:
        raise EditError(f"unknown layer type {op!r}; known: {', '.join(layers.LAYERS)}")
    shape = infer(graph)
    before = next(n for n in shape["nodes"] if n["id"] == node["inputs"][0]).get("shape") or []
    channels = before[1] if len(before) == 4 else None
    features = before[-1] if len(before) == 2 else None
    node["params"] = _checked_params(op, {**layers.palette_defaults(op, channels, features),
                                          **(edit.get("params") or {})})
    node["op"] = op
    return graph


def _rewire(graph, edit):
    node = _node(graph, edit["node"])
    old, new = edit["input"], edit["to"]
    if old not in node["inputs"]:
        raise EditError(f"{label(node)} does not read {old!r}")
    order = [n["id"] for n in graph["nodes"]]
    if new not in order:
        raise EditError(f"no node {new!r}")
    if order.index(new) >= order.index(node["id"]):
        raise EditError(f"{new!r} comes after {label(node)}: a network cannot loop back")
    _repoint(node, old, new)
    return graph


def _group(graph, edit):
    name = str(edit["name"]).strip()
    if not name or any(b["id"] == name for b in graph["blocks"]):
        raise EditError(f"a block needs a new, non-empty name ({name!r} is taken or empty)")
    # A block's name is an id in the editor's outline and graph, shown to the whole team: words, not markup
    if not BLOCK_NAME.fullmatch(name):
        raise EditError(f"a block's name is letters, digits, spaces, '_', '.' and '-', at most 60 ({name[:60]!r})")
    members = [_node(graph, node_id) for node_id in edit["nodes"]]
    if not members:
        raise EditError("a block needs at least one node")
    parents = {m.get("block") for m in members}
    if len(parents) != 1:
        raise EditError("the nodes of a block must sit in the same enclosing block")
    for member in members:
        member["block"] = name
    graph["blocks"].append({"id": name, "type": "Group", "parent": parents.pop()})
    return graph


def _ungroup(graph, edit):
    block = next((b for b in graph["blocks"] if b["id"] == edit["block"]), None)
    if block is None:
        raise EditError(f"no block {edit['block']!r}")
    for node in graph["nodes"]:
        if node.get("block") == block["id"]:
            node["block"] = block["parent"]
    for other in graph["blocks"]:
        if other["parent"] == block["id"]:
            other["parent"] = block["parent"]
    graph["blocks"] = [b for b in graph["blocks"] if b["id"] != block["id"]]
    return graph


_APPLY = {"set": _set, "resize": _resize, "insert": _insert, "remove": _remove, "replace": _replace,
          "rewire": _rewire, "group": _group, "ungroup": _ungroup}


def apply_folding(graph: dict, edits: list[dict]) -> dict:
    """Only group and ungroup edits (they change how the graph folds, not the network)."""
    graph = copy.deepcopy(graph)
    for index, edit in enumerate(edits, start=1):
        try:
            graph = {"group": _group, "ungroup": _ungroup}[edit["op"]](graph, edit)
        except (KeyError, TypeError) as exc:
            raise EditError(f"Edit {index}: malformed ({exc}).") from None
        except EditError as exc:
            raise EditError(f"Edit {index} ({edit['op']}): {exc}") from None
    return graph
