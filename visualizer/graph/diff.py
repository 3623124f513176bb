"""What an edited graph changed, as lines a person reads (the architecture's history shows them)."""

from .infer import label


def diff(before: dict, after: dict) -> dict:
    old = {n["id"]: n for n in before["nodes"]}
    new = {n["id"]: n for n in after["nodes"]}
    added = [f"+ {label(new[i])} ({new[i]['op']})" for i in new if i not in old]
    removed = [f"- {label(old[i])} ({old[i]['op']})" for i in old if i not in new]
    changed = []
    for node_id in new:
        if node_id not in old:
            continue
        a, b = old[node_id], new[node_id]
        if a["op"] != b["op"]:
            changed.append(f"~ {label(b)}: {a['op']} → {b['op']}")
            continue
        for key in sorted(set(a.get("params") or {}) | set(b.get("params") or {})):
            x, y = (a.get("params") or {}).get(key), (b.get("params") or {}).get(key)
            if x != y:
                changed.append(f"~ {label(b)}: {key} {x} → {y}")
        if a["inputs"] != b["inputs"] and node_id not in [n for n in new if n not in old]:
            changed.append(f"~ {label(b)}: reads {', '.join(b['inputs'])} (was {', '.join(a['inputs'])})")
    totals = {}
    for key in ("params", "flops"):
        x, y = before.get("totals", {}).get(key, 0), after.get("totals", {}).get(key, 0)
        totals[key] = {"before": x, "after": y, "change": y - x}
    return {"lines": added + removed + changed, "totals": totals}
