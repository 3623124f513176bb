"""Engine checks: layers of a graph that the project's engine cannot run, or runs slowly, before anything is
trained. The facts are tango_common.engines.LAYER_FACTS' (one table for the whole portal, each with its source)."""

from tango_common.engines import ENGINES, layer_facts


def engine_flags(graph: dict, engine_key: str) -> list[dict]:
    """[{"node", "level", "message", "source"}] for the engine, the gravest fact per node; empty when every
    layer runs."""
    if engine_key not in ENGINES:
        return [{"node": None, "level": "unsupported", "message": f"Unknown engine {engine_key!r}.", "source": ""}]
    shapes = {node["id"]: node.get("shape") for node in graph["nodes"]}
    flags = []
    for node in graph["nodes"]:
        if node["kind"] != "module":
            continue
        source = shapes.get(node["inputs"][0]) if node["inputs"] else None
        source = source if isinstance(source, list) and source and isinstance(source[0], int) else None
        layers = _row_layers(node, source) if graph.get("family") == "yolo" else [(node["op"], node["params"])]
        facts = [fact for op, params in layers for fact in layer_facts(engine_key, op, params, source)]
        if facts:
            fact = min(facts, key=lambda f: f.level != "unsupported")
            flags.append({"node": node["id"], "level": fact.level, "source": fact.source,
                          "message": f"{node['target']} ({node['op']}): {ENGINES[engine_key].label} {fact.why}."})
    return flags


def _row_layers(node: dict, input_shape) -> list[tuple[str, dict]]:
    """A detector's row as the layers the facts are about: its own settings where the row's arguments say them
    (ultralytics' Conv(c2, k, s, p, g, d), nn.MaxPool2d(k, s, p), nn.Upsample(size, scale, mode)), and the layer
    types inside it."""
    op, args = node["op"], list(node["params"].get("args") or [])
    shape = node.get("shape")
    out = [(inner, {}) for inner in node.get("modules", ())]

    def arg(i: int, default):
        return args[i] if len(args) > i and args[i] is not None else default

    if op == "Conv":
        kernel = arg(1, 1)
        params = {"kernel_size": kernel, "stride": arg(2, 1), "padding": arg(3, kernel // 2 if isinstance(
            kernel, int) else 0), "groups": arg(4, 1), "dilation": arg(5, 1)}
        if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int):
            params["out_channels"] = shape[1]
        if input_shape:
            params["in_channels"] = input_shape[1]
        out = [("Conv2d", params)] + [(inner, {}) for inner in node.get("modules", ()) if inner != "Conv2d"]
    elif op in ("MaxPool2d", "AvgPool2d"):
        out = [(op, {"kernel_size": arg(0, 1), "stride": arg(1, arg(0, 1)), "padding": arg(2, 0)})]
    elif op == "Upsample":
        out = [("Upsample", {"mode": arg(2, "nearest")})]
    elif op == "Detect":
        out = [("Detect", {})] + out
    return out
