"""Server-side SVG charts of the recommendation (no chart library, no JavaScript, nothing fetched), and the
models' names as people read them."""

import math

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD_LEFT, PAD = 760, 300, 44, 30
STATUS_COLOURS = {"recommended": "#2563eb", "fits": "#16a34a", "too_slow": "#94a3b8", "too_big": "#f97316",
                  "too_slow_and_big": "#94a3b8"}


class _LogAxis:
    """Maps a positive value onto [start, end] pixels on a log scale with a little margin."""

    def __init__(self, values, start, end):
        values = [v for v in values if v and v > 0] or [1.0]
        self.low, self.high = math.log10(min(values)) - 0.1, math.log10(max(values)) + 0.1
        self.start, self.end = start, end

    def __call__(self, value):
        value = max(value, 10 ** self.low)
        return self.start + (self.end - self.start) * (math.log10(value) - self.low) / (self.high - self.low)

    def ticks(self):
        return [10.0**k for k in range(math.ceil(self.low), math.floor(self.high) + 1)]


@register.filter
def model_label(key: str) -> str:
    """"resnet18" -> "ResNet-18", as the ranking and the paper name it."""
    from ..services import model_label as label

    return label(key)


@register.inclusion_tag("recommender/_tradeoff_chart.html")
def tradeoff_chart(result):
    """Predicted latency (x, log) against expected accuracy (y) for every candidate; budget line; paper choice."""
    ranking = (result or {}).get("ranking") or {}
    items = ranking.get("items") or []
    if not items:
        return {"points": []}
    budget = ranking.get("budget_ms")
    x = _LogAxis([i["latency_ms"] for i in items] + ([budget] if budget else []), PAD_LEFT, WIDTH - PAD)
    accuracies = [i["accuracy"] for i in items]
    low, high = math.floor(min(accuracies)) - 1, math.ceil(max(accuracies)) + 1

    def y(value):
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / ((high - low) or 1)

    paper_key = (result.get("paper") or {}).get("model")
    # The recommendation is the model that trains: the ranking's top, or the smaller one a small dataset can train
    # (the recommend stage's result["model"]), so that one is marked, and the ranking's top drawn as one that fits.
    recommended = result.get("model") or (ranking.get("top") or {}).get("key")
    metric = result.get("accuracy_metric", "top-1")

    def status(i):
        return "recommended" if i["key"] == recommended else "fits" if i["status"] == "recommended" else i["status"]

    points = [{"x": round(x(i["latency_ms"]), 1), "y": round(y(i["accuracy"]), 1), "label": i["label"],
               "box_x": round(x(i["latency_ms"]) - 8, 1), "box_y": round(y(i["accuracy"]) - 8, 1),
               "colour": STATUS_COLOURS.get(status(i), "#94a3b8"), "status": status(i),
               "top": status(i) == "recommended", "paper": i["key"] == paper_key,
               "title": f"{i['label']}: {i['latency_ms']:.1f} ms, {i['memory_mb']:.0f} MiB, expected "
                        f"{i['accuracy']:.1f}% {metric} — {i['reason']}"} for i in items]
    return {"points": points, "width": WIDTH, "height": HEIGHT, "left": PAD_LEFT, "pad": PAD,
            "right": WIDTH - PAD, "bottom": HEIGHT - PAD, "budget_x": round(x(budget), 1) if budget else None,
            "budget": budget, "high": high, "low": low,
            "ticks": [{"x": round(x(t), 1), "label": f"{t:g} ms"} for t in x.ticks()],
            "paper_label": (result.get("paper") or {}).get("model_label", ""), "metric": metric}


@register.inclusion_tag("recommender/_error_chart.html")
def error_chart(rows):
    """Measured (x) against predicted (y) latency, log-log, with the y = x line and a ±10 % band."""
    rows = [r for r in rows or [] if r.get("predicted_ms")]
    if not rows:
        return {"points": []}
    values = [r["measured_ms"] for r in rows] + [r["predicted_ms"] for r in rows]
    x = _LogAxis(values, PAD_LEFT, WIDTH - PAD)
    y = _LogAxis(values, HEIGHT - PAD, PAD)
    low, high = 10**x.low, 10**x.high
    band = [(low, low * 1.1), (high, high * 1.1), (high, high / 1.1), (low, low / 1.1)]
    return {"points": [{"x": round(x(r["measured_ms"]), 1), "y": round(y(r["predicted_ms"]), 1),
                        "inside": abs(r["error"]) <= 0.10,
                        "title": f"{r['label']} at {r['input_size']} px: measured {r['measured_ms']:.2f} ms, "
                                 f"predicted {r['predicted_ms']:.2f} ms ({100 * r['error']:+.0f}%)"} for r in rows],
            "diagonal": (round(x(low), 1), round(y(low), 1), round(x(high), 1), round(y(high), 1)),
            "band": " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in band),
            "ticks": [{"x": round(x(t), 1), "y": round(y(t), 1), "label": f"{t:g}"} for t in x.ticks()],
            "width": WIDTH, "height": HEIGHT, "left": PAD_LEFT, "pad": PAD, "right": WIDTH - PAD,
            "bottom": HEIGHT - PAD}
