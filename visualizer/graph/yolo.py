"""A YOLO model .yaml (the YOLOv7 family and YOLO11, as ultralytics reads them) as a graph, and edits of it.

A detection network is defined by its model dict: rows [from, repeats, module, args] in a backbone and a head.
The graph has one node per row (its module, its arguments, the rows it reads: skip and concat edges included),
folded into the backbone and the head, and inside them into the ELAN-style blocks that end in a concatenation.
Shapes, parameter counts and FLOPs come from the layers themselves: the caller hands a builder `build(spec) ->
layers` (ultralytics' parse_model, run on the meta device), so this core imports neither ultralytics nor the
training engine.

Edits (each a small JSON object, applied in order; node ids are row indexes as the graph numbers them then):

    {"op": "set", "node": ROW, "params": {"args": [...], "repeats": N}}   change a row
    {"op": "insert", "after": ROW | "x", "layer": MODULE, "params": {...}}  a new row reading ROW; what read ROW
                                                                          reads the new row
    {"op": "remove", "node": ROW}                 a row out; what read it reads the row it read
    {"op": "replace", "node": ROW, "layer": MODULE, "params": {...}}       another module in the same row
    {"op": "rewire", "node": ROW, "input": OLD, "to": NEW}                 a row reads another, earlier row
    {"op": "group" | "ungroup", ...}              change only the folding (as for every graph)

Inserting or removing a row renumbers every row after it, and every `from` reference follows: relative ones
(-1, -2) keep pointing at the same rows, absolute ones (a concat's 14, Detect's 74) are re-indexed. Input channels
are inferred from the rows a layer reads when the layers are built, so a width change carries by itself; what can
break is a concatenation of maps whose sizes differ, or a row the builder refuses: `errors` names the row and the
mismatch. Each node keeps `origin`, the row of the unedited model it came from (None for an inserted row), so the
changes read as the user made them.

Shape inference is incremental: each row's shapes, parameters, FLOPs and profile are cached by what decides them
(its module, arguments and input shapes), and a row missing from the cache is built alone (its inputs stand in as
placeholders), so an edit costs the rows it changed, not the network.
"""

import copy
import json
import threading
from collections import OrderedDict

import torch
from torch import nn

from tango_common.op_counter import OpCounter

from . import layers as layer_types
from .infer import BATCH

SECTIONS = ("backbone", "head")
INPUT = "x"
HEADS = {"Detect", "Segment", "Pose", "OBB", "v10Detect", "WorldDetect", "YOLOEDetect", "RTDETRDecoder"}
# What the palette drops into a detector (the module as the .yaml names it, and its arguments); Conv's width
# starts at the channels it reads.
ROW_PALETTE = {"Conv": "Conv", "MaxPool2d": "nn.MaxPool2d", "Upsample": "nn.Upsample", "Identity": "nn.Identity"}
_GLOBALS = ("nc", "activation", "depth_multiple", "width_multiple", "scales", "scale", "reg_max", "end2end",
            "kpt_shape")


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


def yolo_graph(spec: dict, build, input_size: int, *, name: str, origins: list | None = None) -> dict:
    """The model dict as a graph; build(spec) -> the layers (an nn.Sequential/ModuleList of ultralytics rows).
    origins: for each row, the row of the unedited model it came from (None: inserted); default: itself."""
    table = rows(spec)
    origins = [str(i) for i in range(len(table))] if origins is None else origins
    nodes = [{"id": INPUT, "kind": "input", "op": "input", "inputs": [], "shape": [BATCH, 3, input_size, input_size]}]
    for section, index, (source, repeats, module, args) in table:
        inputs = [INPUT if s < 0 else str(s) for s in _sources(source, index)]
        nodes.append({"id": str(index), "kind": "module", "op": _module_name(module), "target": f"{section}.{index}",
                      "params": {"args": copy.deepcopy(args), "repeats": repeats}, "inputs": inputs,
                      "block": section, "origin": origins[index]})
        if origins[index] is None:
            nodes[-1]["added"] = True
    last = str(len(table) - 1)
    nodes.append({"id": "output", "kind": "output", "op": "output", "inputs": [last]})
    graph = {"name": name, "family": "yolo", "input_size": input_size, "num_classes": spec.get("nc"),
             "spec": copy.deepcopy(spec), "nodes": nodes, "blocks": _blocks(table), "origins": list(origins)}
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


# --- shapes, parameters, FLOPs and the recommender's profile, row by row ---------------------------------------

_CACHE: OrderedDict = OrderedDict()  # row key -> what the row gives (shared by the web server's threads)
_CACHE_SIZE = 20_000
_CACHE_LOCK = threading.Lock()


def _shapes(graph: dict, build) -> dict:
    graph["errors"] = []
    spec = graph["spec"]
    table = rows(spec)
    by_id = {n["id"]: n for n in graph["nodes"]}
    context = json.dumps({k: spec.get(k) for k in _GLOBALS}, sort_keys=True, default=str)
    heads_need = sorted({_module_name(m) for _, _, (_, _, m, _) in table})  # a head's build reads earlier rows
    image = [BATCH, 3, graph["input_size"], graph["input_size"]]
    saved: list = []
    totals = dict.fromkeys(("params", "flops", "layers", "ops", "activation_values", "peak_values", "macs_1x1",
                            "macs_linear"), 0)
    full = None  # the whole network's layers, built only when a head row is not cached
    for _, index, (source, repeats, module, args) in table:
        node = by_id[str(index)]
        sources = _sources(source, index)
        if index and any(not 0 <= s < index for s in sources):
            graph["errors"].append({"node": node["id"], "message": f"{node['target']} ({_module_name(module)}) reads "
                                                                   f"{source}: a row reads earlier rows only"})
            break
        shapes = [image] if index == 0 else [saved[s] for s in sources]
        name = _module_name(module)
        if problem := _join_problem(node, name, args, shapes, by_id):
            graph["errors"].append({"node": node["id"], "message": problem})
            break
        key = json.dumps([context, module, args, repeats, shapes, image, index == 0, index == len(table) - 1,
                          heads_need if name in HEADS else None], default=str)
        with _CACHE_LOCK:
            row = _CACHE.get(key)
            if row is not None:
                _CACHE.move_to_end(key)
        if row is None:
            try:
                if name in HEADS:
                    if full is None:
                        with torch.device("meta"):
                            full = build(spec)
                    layer = full[index]
                else:
                    layer = _build_row(build, spec, index, shapes)
                row = _profile_row(layer, shapes, image, first=index == 0, last=index == len(table) - 1)
            except _RowError as exc:
                graph["errors"].append({"node": node["id"], "message": f"{node['target']} ({node['op']}) {exc}"})
                break
            with _CACHE_LOCK:
                _CACHE[key] = row
                if len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
        node.update(shape=copy.deepcopy(row["shape"]), param_count=row["params"], flops=row["flops"],
                    modules=list(row["modules"]))
        for k in totals:
            totals[k] = max(totals[k], row[k]) if k == "peak_values" else totals[k] + row[k]
        saved.append(row["shape"])
    if not graph["errors"]:
        by_id["output"]["shape"] = by_id[str(len(table) - 1)].get("shape")
    graph["totals"] = {**totals, "nodes": len(graph["nodes"])}
    return graph


class _RowError(Exception):
    pass


def _join_problem(node: dict, name: str, args: list, shapes: list, by_id: dict) -> str | None:
    """A concatenation of maps whose other dimensions differ, named before it runs."""
    if name != "Concat" or len(shapes) < 2 or not all(isinstance(s, list) and s and isinstance(s[0], int)
                                                      for s in shapes):
        return None
    dim = args[0] if args else 1
    rest = [s[:dim] + s[dim + 1:] for s in shapes]
    if all(r == rest[0] for r in rest):
        return None
    parts = [f"{'×'.join(map(str, s[2:]))} from {by_id[ref]['target'] if ref != INPUT else 'the image'}"
             for s, ref in zip(shapes, node["inputs"], strict=False)]
    return (f"{node['target']} (Concat) joins maps of different sizes: {', '.join(parts)}; they must match (a "
            f"stride, pooling or upsampling changed one branch)")


def _build_row(build, spec: dict, index: int, shapes: list) -> nn.Module:
    """One row built alone: its inputs stand in as placeholder rows of the right channel counts (ultralytics'
    Index rows: no weights), so the builder infers the row's input channels as it does in the whole network."""
    section, _, (source, repeats, module, args) = rows(spec)[index]
    channels = [s[1] if isinstance(s, list) and len(s) > 1 and isinstance(s[1], int) else 1 for s in shapes]
    holders = [[-1, 1, "Index", [c]] for c in channels]
    if isinstance(source, list):
        source = list(range(len(holders)))
    else:
        source = len(holders) - 1
    mini = {k: copy.deepcopy(spec[k]) for k in _GLOBALS if k in spec}
    mini.update(backbone=holders + [[source, repeats, module, copy.deepcopy(args)]], head=[])
    try:
        with torch.device("meta"):
            return build(mini)[-1]
    except Exception as exc:  # the builder's own refusal, whatever it raises
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _RowError(f"cannot be built with {json.dumps(args)}: {first}") from None


def _meta(shape):
    if isinstance(shape, list) and shape and all(isinstance(v, int) for v in shape):
        return torch.empty(shape, device="meta")
    if isinstance(shape, list):
        return [_meta(s) for s in shape]
    return None


def _profile_row(layer: nn.Module, shapes: list, image: list, *, first: bool, last: bool) -> dict:
    """Run one row on meta tensors: its output shape, parameters, FLOPs, the layer types inside it, and the
    recommender's profile of it (recommender.profiling: ops, activations, the peak live set, MACs)."""
    layer.eval()
    if last:
        layer.train()  # the head gives its raw maps, as Routed runs it
    modules = sorted({type(m).__name__ for m in layer.modules() if layer_types.supported(m)})
    _fast_norms(layer)
    inputs = [_meta(s) for s in shapes]
    x = inputs[0] if len(inputs) == 1 and not isinstance(layer.f, list) else inputs
    # The whole network (Routed) holds the image while every row runs: it counts in every live set, once.
    held = id(inputs[0]) if first else -1
    counter = OpCounter(held=[(held, image[0] * image[1] * image[2] * image[3])])
    hooks = counter.attach(layer)
    try:
        with torch.no_grad():
            out = layer(x)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _RowError(f"cannot take {_shape(x)}: {first_line}") from None
    finally:
        for hook in hooks:
            hook.remove()
    return {"shape": _shape(out), "params": sum(p.numel() for p in layer.parameters()), "flops": 2 * counter.macs,
            "modules": modules, "layers": counter.layers, "ops": counter.ops,
            "activation_values": counter.activation_values, "peak_values": counter.peak_values,
            "macs_1x1": counter.macs_1x1, "macs_linear": counter.macs_linear}


def _shape(value):
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    if isinstance(value, dict):  # a head in training mode: {"boxes", "scores", "feats"}
        return {str(k): _shape(v) for k, v in value.items()}
    return None


# --- edits ----------------------------------------------------------------------------------------------------


class YoloEditError(ValueError):
    pass


YOLO_OPS = ("set", "insert", "remove", "replace", "rewire", "group", "ungroup")


class _Row:
    """A row while edits move it: its section, where it came from, and the rows it reads (objects, so inserting
    or removing a row moves no reference)."""

    def __init__(self, section, origin, repeats, module, args):
        self.section, self.origin, self.repeats, self.module, self.args = section, origin, repeats, module, args
        self.sources: list = []  # [(row | INPUT, relative)]
        self.scalar = True  # `from` written as one number, not a list


def _unpack(spec: dict, origins: list) -> list[_Row]:
    table = rows(spec)
    out = [_Row(section, origins[index], repeats, module, copy.deepcopy(args))
           for section, index, (_, repeats, module, args) in table]
    for (_, index, (source, *_)), row in zip(table, out, strict=True):
        row.scalar = not isinstance(source, list)
        for ref in source if isinstance(source, list) else [source]:
            target = index + ref if ref < 0 else ref
            if index == 0 and ref == -1:
                row.sources.append((INPUT, True))
            elif not 0 <= target < index:
                raise YoloEditError(f"row {index} reads {ref}: not an earlier row")
            else:
                row.sources.append((out[target], ref < 0))
    return out


def _pack(spec: dict, table: list[_Row]) -> tuple[dict, list]:
    """The model dict again, every `from` re-indexed for the rows' new positions."""
    position = {id(row): i for i, row in enumerate(table)}
    spec = copy.deepcopy(spec)
    for section in SECTIONS:
        spec[section] = []
    for i, row in enumerate(table):
        refs = []
        for source, relative in row.sources:
            if source is INPUT:
                if i != 0:
                    raise YoloEditError(f"row {i} would read the image: only the first row can (remove the row "
                                        "after it, or rewire its readers first)")
                refs.append(-1)
            else:
                at = position.get(id(source))
                if at is None:
                    raise YoloEditError(f"row {i} reads a removed row")
                refs.append(at - i if relative else at)
        source = refs[0] if row.scalar and len(refs) == 1 else refs
        spec[row.section].append([source, row.repeats, row.module, row.args])
    if any(s not in SECTIONS for s in {row.section for row in table}):
        raise YoloEditError("unknown section")
    return spec, [row.origin for row in table]


def yolo_apply(graph: dict, edits: list[dict], build) -> dict:
    """The graph after the edits, shapes re-inferred (see `errors`)."""
    origins = graph.get("origins") or [str(i) for i in range(len(rows(graph["spec"])))]
    table = _unpack(graph["spec"], origins)
    folding = []  # (edit, the rows a group names: objects, so later row edits move no member)
    for number, edit in enumerate(edits, start=1):
        try:
            op = edit.get("op") if isinstance(edit, dict) else None
            if op == "group":
                members = [edit_node if str(edit_node) == INPUT else _row(table, edit_node)
                           for edit_node in edit["nodes"]]
                folding.append((edit, members))
                continue
            if op == "ungroup":
                folding.append((edit, None))
                continue
            if op not in YOLO_OPS:
                raise YoloEditError(f"op must be one of {', '.join(YOLO_OPS)}")
            _ROW_EDITS[op](table, edit, graph["spec"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise YoloEditError(f"Edit {number}: malformed ({exc}).") from None
        except YoloEditError as exc:
            raise YoloEditError(f"Edit {number} ({edit.get('op') if isinstance(edit, dict) else '?'}): {exc}") from None
    try:
        spec, origins = _pack(graph["spec"], table)
    except YoloEditError as exc:
        raise YoloEditError(f"The edits leave a row without its input: {exc}.") from None
    edited = yolo_graph(spec, build, graph["input_size"], name=graph["name"], origins=origins)
    if folding:
        from .edits import EditError, apply_folding

        position = {id(row): str(i) for i, row in enumerate(table)}
        renamed = []
        for edit, members in folding:
            if members is not None:  # the group's rows where they are now (a removed row leaves the group)
                nodes = [m if m == INPUT else position[id(m)] for m in members if m == INPUT or id(m) in position]
                edit = {**edit, "nodes": nodes}
            renamed.append(edit)
        try:
            edited = apply_folding(edited, renamed)
        except EditError as exc:
            raise YoloEditError(str(exc)) from None
    return edited


def _row(table: list[_Row], node) -> _Row:
    key = str(node)
    if not key.isdigit() or int(key) >= len(table):
        raise YoloEditError(f"no row {node!r}")
    return table[int(key)]


def _set(table, edit, spec):
    row = _row(table, edit["node"])
    _set_params(row, edit["params"])


def _set_params(row: _Row, changes) -> None:
    if not isinstance(changes, dict):
        raise YoloEditError("params must be an object")
    unknown = sorted(set(changes) - {"args", "repeats"})
    if unknown:
        raise YoloEditError(f"a row has args and repeats, not {', '.join(unknown)}")
    if "args" in changes:
        if not isinstance(changes["args"], list):
            raise YoloEditError("args must be a list")
        row.args = copy.deepcopy(changes["args"])
    if "repeats" in changes:
        if not isinstance(changes["repeats"], int) or isinstance(changes["repeats"], bool) \
                or not 1 <= changes["repeats"] <= 64:
            raise YoloEditError("repeats must be a whole number from 1 to 64")
        row.repeats = changes["repeats"]


def _module_for(layer) -> str:
    if layer not in ROW_PALETTE:
        raise YoloEditError(f"unknown layer {layer!r} for a detector; known: {', '.join(ROW_PALETTE)}")
    return ROW_PALETTE[layer]


def _default_args(layer: str, channels: int | None, spec: dict) -> list:
    if layer == "Conv":
        width = spec.get("width_multiple", 1.0) or 1.0
        return [max(1, round((channels or 64) / width)), 3, 1]
    return {"MaxPool2d": [2, 2, 0], "Upsample": [None, 2, "nearest"], "Identity": []}[layer]


def _channels_of(table: list[_Row], spec: dict, row: _Row | str) -> int | None:
    """The channels a row puts out in the unedited spec's terms (read off a fresh graph only when needed)."""
    if row is INPUT:
        return 3
    args = row.args
    if _module_name(row.module) == "Conv" and args and isinstance(args[0], int):
        width = spec.get("width_multiple", 1.0) or 1.0
        return round(args[0] * width)
    for source, _ in row.sources:  # pools, upsampling, concats: follow the first input
        return _channels_of(table, spec, source)
    return None


def _insert(table, edit, spec):
    after = INPUT if str(edit["after"]) == INPUT else _row(table, edit["after"])
    if after is not INPUT and after is table[-1]:
        raise YoloEditError("nothing can follow the detection head")
    layer = edit["layer"]
    module = _module_for(layer)
    section = table[0].section if after is INPUT else after.section
    new = _Row(section, None, 1, module, _default_args(layer, _channels_of(table, spec, after), spec))
    new.sources = [(after, True)]
    _set_params(new, edit.get("params") or {})
    for row in table:  # what read `after` reads the new row
        row.sources = [(new if source is after else source, relative) for source, relative in row.sources]
    at = 0 if after is INPUT else table.index(after) + 1
    table.insert(at, new)


def _remove(table, edit, spec):
    row = _row(table, edit["node"])
    if row is table[-1]:
        raise YoloEditError("the detection head cannot be removed")
    if len(row.sources) != 1:
        raise YoloEditError(f"row {edit['node']} joins {len(row.sources)} inputs; rewire or remove its branches "
                            "instead")
    source = row.sources[0][0]
    table.remove(row)
    for other in table:
        other.sources = [(source if s is row else s, relative) for s, relative in other.sources]


def _replace(table, edit, spec):
    row = _row(table, edit["node"])
    if row is table[-1]:
        raise YoloEditError("the detection head cannot be replaced")
    if len(row.sources) != 1:
        raise YoloEditError(f"row {edit['node']} joins several inputs; only a one-input row can be replaced")
    layer = edit["layer"]
    row.module = _module_for(layer)
    row.args = _default_args(layer, _channels_of(table, spec, row.sources[0][0]), spec)
    row.repeats = 1
    _set_params(row, edit.get("params") or {})


def _rewire(table, edit, spec):
    row = _row(table, edit["node"])
    old = INPUT if str(edit["input"]) == INPUT else _row(table, edit["input"])
    new = INPUT if str(edit["to"]) == INPUT else _row(table, edit["to"])
    if not any(source is old for source, _ in row.sources):
        raise YoloEditError(f"row {edit['node']} does not read {edit['input']!r}")
    at = table.index(row)
    if new is not INPUT and table.index(new) >= at:
        raise YoloEditError(f"row {edit['to']} comes after row {edit['node']}: a network cannot loop back")
    row.sources = [(new if source is old else source, relative) for source, relative in row.sources]


_ROW_EDITS = {"set": _set, "insert": _insert, "remove": _remove, "replace": _replace, "rewire": _rewire}


# --- the routed network (profiling, training's ONNX export) ----------------------------------------------------


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


ACTIVATIONS = (nn.LeakyReLU, nn.SiLU, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Sigmoid, nn.GELU)


class _SameShape(nn.Module):
    """An element-wise activation on the meta device: a new tensor of its input's shape (in place: the input)."""

    def __init__(self, inplace: bool):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return x if self.inplace else torch.empty_like(x)


def _fast_norms(model: nn.Module) -> None:
    """Batch norms and activations of a meta-device network answer with a tensor of their input's shape, as they
    would: running one on the meta device goes through slow Python decompositions and tells nothing more. An
    activation is swapped in its parent, never changed itself (ultralytics shares one default activation across
    every model of the process)."""
    for module in list(model.modules()):
        if isinstance(module, nn.BatchNorm2d):
            module.forward = _same_shape
        for name, child in list(module.named_children()):
            if type(child) in ACTIVATIONS:
                setattr(module, name, _SameShape(bool(getattr(child, "inplace", False))))
