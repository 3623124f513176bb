"""A YOLO model .yaml (the YOLOv7 family and YOLO11, as ultralytics reads them) as a graph, and edits of it.

A detection network is defined by its model dict: rows [from, repeats, module, args] in a backbone and a head.
The graph has one node per row (its module, its arguments, the rows it reads: skip and concat edges included),
folded into the backbone and the head, and inside them into the ELAN-style blocks that end in a concatenation.
Shapes, parameter counts and FLOPs come from the layers themselves: the caller builds them from the dict (with
ultralytics' parse_model, on the meta device) and hands them here as `build(spec) -> layers`, so this core
imports neither ultralytics nor the training engine.

Edits change a row's arguments or repeats ({"op": "set", "node": ROW, "params": {"args": [...]}}); input
channels are inferred from the rows a layer reads when the layers are built, so a new width carries by itself and
what can break is a concatenation of maps whose sizes differ, or a row the builder refuses: `errors` names it.
"""

import copy

import torch
from torch import nn

from . import layers as layer_types
from .infer import BATCH

SECTIONS = ("backbone", "head")


def rows(spec: dict) -> list[tuple[str, int, list]]:
    """(section, index, row) of every row, indexed as ultralytics numbers them."""
    out = []
    for section in SECTIONS:
        for row in spec.get(section, []):
            out.append((section, len(out), row))
    return out


def _sources(source, index: int) -> list[int]:
    items = source if isinstance(source, list) else [source]
    return [index + s if s < 0 else s for s in items]


def _module_name(module) -> str:
    return str(module).removeprefix("nn.").removeprefix("torch.nn.")


def yolo_graph(spec: dict, build, input_size: int, *, name: str) -> dict:
    """The model dict as a graph; build(spec) -> the layers (an nn.ModuleList whose layers carry `.f`)."""
    table = rows(spec)
    nodes = [{"id": "x", "kind": "input", "op": "input", "inputs": [], "shape": [BATCH, 3, input_size, input_size]}]
    for section, index, (source, repeats, module, args) in table:
        inputs = ["x" if s < 0 else str(s) for s in _sources(source, index)]
        nodes.append({"id": str(index), "kind": "module", "op": _module_name(module), "target": f"{section}.{index}",
                      "params": {"args": copy.deepcopy(args), "repeats": repeats}, "inputs": inputs,
                      "block": section})
    last = str(len(table) - 1)
    nodes.append({"id": "output", "kind": "output", "op": "output", "inputs": [last]})
    graph = {"name": name, "family": "yolo", "input_size": input_size, "num_classes": spec.get("nc"),
             "spec": copy.deepcopy(spec), "nodes": nodes, "blocks": _blocks(table)}
    for node in nodes:
        if node["kind"] == "module":
            block = next((b["id"] for b in graph["blocks"] if b["parent"] and int(node["id"]) in b["rows"]), None)
            node["block"] = block or node["block"]
    for block in graph["blocks"]:
        block.pop("rows", None)
    return _shapes(graph, build)


def _blocks(table) -> list[dict]:
    """The backbone and the head, and within them each concatenation with the rows that feed it (an ELAN block:
    its branches, the concat and the 1x1 convolution after it)."""
    blocks = [{"id": section, "type": section.capitalize(), "parent": None, "rows": set()} for section in SECTIONS]
    claimed: set[int] = set()
    for section, index, (source, _, module, _) in table:
        if _module_name(module) != "Concat" or section != "backbone":
            continue
        sources = _sources(source, index)
        first = min(sources)
        members = set(range(first, index + 1))
        if index + 1 < len(table) and table[index + 1][0] == section:
            members.add(index + 1)  # the transition after the concat
        members -= claimed
        if len(members) < 3:
            continue
        claimed |= members
        blocks.append({"id": f"{section}.elan{sum(1 for b in blocks if b['parent'] == section) + 1}",
                       "type": "ELAN", "parent": section, "rows": members})
    return blocks


def _shapes(graph: dict, build) -> dict:
    graph["errors"] = []
    by_id = {n["id"]: n for n in graph["nodes"]}
    try:
        with torch.device("meta"):
            layers = build(graph["spec"])
    except Exception as exc:  # the builder's own refusal names no row: find the first row it cannot build
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        graph["errors"].append({"node": None, "message": f"the network cannot be built: {message}"})
        graph["totals"] = {"params": 0, "flops": 0, "layers": 0, "nodes": len(graph["nodes"])}
        return graph
    _fast_norms(layers)
    saved: list = []
    x = torch.empty(BATCH, 3, graph["input_size"], graph["input_size"], device="meta")
    params = flops = 0
    for i, layer in enumerate(layers):
        node = by_id[str(i)]
        if layer.f != -1:
            x = saved[layer.f] if isinstance(layer.f, int) else [x if j == -1 else saved[j] for j in layer.f]
        counter = _FlopCounter(layer)
        try:
            with torch.no_grad():
                x = layer(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0]
            shapes = [list(t.shape) for t in x] if isinstance(x, list) else [list(x.shape)]
            graph["errors"].append({"node": node["id"], "message": f"{node['target']} ({node['op']}) cannot take "
                                                                   f"{shapes}: {first}"})
            break
        finally:
            counter.remove()
        node["shape"] = _shape(x)
        node["param_count"] = sum(p.numel() for p in layer.parameters())
        node["flops"] = counter.flops
        node["modules"] = sorted({type(m).__name__ for m in layer.modules() if layer_types.supported(m)})
        params += node["param_count"]
        flops += counter.flops
        saved.append(x)
    if not graph["errors"]:
        by_id["output"]["shape"] = by_id[str(len(layers) - 1)].get("shape")
    graph["totals"] = {"params": params, "flops": flops,
                       "layers": sum(1 for m in layers.modules() if isinstance(m, nn.Conv2d | nn.Linear)),
                       "nodes": len(graph["nodes"])}
    return graph


def _shape(value):
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    return None


class _FlopCounter:
    def __init__(self, layer: nn.Module):
        self.flops = 0
        self.hooks = [m.register_forward_hook(self._count) for m in layer.modules()
                      if isinstance(m, nn.Conv2d | nn.Linear)]

    def _count(self, module, inputs, output):
        self.flops += layer_types.flops(module, output)

    def remove(self):
        for hook in self.hooks:
            hook.remove()


class YoloEditError(ValueError):
    pass


def yolo_apply(graph: dict, edits: list[dict], build) -> dict:
    """The graph after the edits (set a row's args or repeats; group and ungroup change only the folding)."""
    spec = copy.deepcopy(graph["spec"])
    table = {str(index): row for _, index, row in rows(spec)}
    folding = []
    for number, edit in enumerate(edits, start=1):
        try:
            op = edit["op"]
            if op in ("group", "ungroup"):
                folding.append(edit)
                continue
            if op != "set":
                raise YoloEditError("detection networks take set (args, repeats), group and ungroup edits so far")
            row = table.get(str(edit["node"]))
            if row is None:
                raise YoloEditError(f"no row {edit['node']!r}")
            changes = edit["params"]
            unknown = sorted(set(changes) - {"args", "repeats"})
            if unknown:
                raise YoloEditError(f"a row has args and repeats, not {', '.join(unknown)}")
            if "args" in changes:
                if not isinstance(changes["args"], list):
                    raise YoloEditError("args must be a list")
                row[3] = changes["args"]
            if "repeats" in changes:
                if not isinstance(changes["repeats"], int) or not 1 <= changes["repeats"] <= 64:
                    raise YoloEditError("repeats must be a whole number from 1 to 64")
                row[1] = changes["repeats"]
        except (KeyError, TypeError) as exc:
            raise YoloEditError(f"Edit {number}: malformed ({exc}).") from None
        except YoloEditError as exc:
            raise YoloEditError(f"Edit {number} ({edit.get('op')}): {exc}") from None
    edited = yolo_graph(spec, build, graph["input_size"], name=graph["name"])
    if folding:
        from .edits import apply_folding

        edited = apply_folding(edited, folding)
    return edited


class Routed(nn.Module):
    """The built layers run as ultralytics' DetectionModel runs them (each layer's `f` names its inputs); the head
    in training mode gives the raw maps (the box decoding after it is a few element-wise operations)."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        saved = []
        for layer in self.layers:
            if layer.f != -1:
                x = saved[layer.f] if isinstance(layer.f, int) else [x if j == -1 else saved[j] for j in layer.f]
            x = layer(x)
            saved.append(x)
        return x


def routed_model(spec: dict, build) -> Routed:
    """The network of a model dict on the meta device, ready to profile (eval mode, the head in training mode)."""
    with torch.device("meta"):
        model = Routed(build(spec)).eval()
    model.layers[-1].train()
    _fast_norms(model)
    return model


def _same_shape(x):
    return torch.empty_like(x)


def _fast_norms(model: nn.Module) -> None:
    """Batch norms of a meta-device network answer with a new tensor of their input's shape, as they would: running
    one on the meta device goes through slow Python decompositions and tells nothing more."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.forward = _same_shape
