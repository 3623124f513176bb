"""What an edited graph changed, as lines a person reads (the architecture's history shows them).

Nodes are matched by `origin` where a graph has it (a detector's rows are renumbered when a row goes in or out:
each keeps the row of the unedited model it came from), else by id.
"""

from .infer import label


def _keyed(graph: dict) -> dict:
    out = {}
    for node in graph["nodes"]:
        origin = node["origin"] if "origin" in node else node["id"]
        out[origin if origin is not None else f"new:{node['id']}"] = node
    return out


def diff(before: dict, after: dict) -> dict:
    old, new = _keyed(before), _keyed(after)
    old_key = {n["id"]: key for key, n in old.items()}
    new_key = {n["id"]: key for key, n in new.items()}
    added = [f"+ {label(new[k])} ({new[k]['op']})" for k in new if k not in old]
    removed = [f"- {label(old[k])} ({old[k]['op']})" for k in old if k not in new]
    now = {n["id"]: label(n) for n in after["nodes"]}
    was = {n["id"]: label(n) for n in before["nodes"]}
    changed = []
    for key, b in new.items():
        if key not in old:
            continue
        a = old[key]
        if a["op"] != b["op"]:
            changed.append(f"~ {label(b)}: {a['op']} → {b['op']}")
            continue
        for param in sorted(set(a.get("params") or {}) | set(b.get("params") or {})):
            x, y = (a.get("params") or {}).get(param), (b.get("params") or {}).get(param)
            if x != y:
                changed.append(f"~ {label(b)}: {param} {x} → {y}")
        if [old_key.get(i, i) for i in a["inputs"]] != [new_key.get(i, i) for i in b["inputs"]]:
            changed.append(f"~ {label(b)}: reads {', '.join(now.get(i, i) for i in b['inputs'])} (was "
                           f"{', '.join(was.get(i, i) for i in a['inputs'])})")
    totals = {}
    for key in ("params", "flops"):
        x, y = before.get("totals", {}).get(key, 0), after.get("totals", {}).get(key, 0)
        totals[key] = {"before": x, "after": y, "change": y - x}
    return {"lines": added + removed + changed, "totals": totals}
