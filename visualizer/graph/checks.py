"""Engine checks: layers of a graph that the project's engine cannot run, or runs slowly, before anything is
trained. The facts are tango_common.engines' (one table for the whole portal)."""

from tango_common.engines import ENGINES, layer_problem


def engine_flags(graph: dict, engine_key: str) -> list[dict]:
    """[{"node", "level", "message"}] for the engine; empty when every layer runs."""
    if engine_key not in ENGINES:
        return [{"node": None, "level": "unsupported", "message": f"Unknown engine {engine_key!r}."}]
    shapes = {node["id"]: node.get("shape") for node in graph["nodes"]}
    flags = []
    for node in graph["nodes"]:
        if node["kind"] != "module":
            continue
        source = node["inputs"][0] if node["inputs"] else None
        problem = layer_problem(engine_key, node["op"], node["params"], shapes.get(source))
        for inner in node.get("modules", ()):  # a detector's row: the layers inside it
            problem = problem or layer_problem(engine_key, inner, {}, None)
        if problem:
            level, why = problem
            flags.append({"node": node["id"], "level": level,
                          "message": f"{node['target']} ({node['op']}): {ENGINES[engine_key].label} {why}."})
    return flags
