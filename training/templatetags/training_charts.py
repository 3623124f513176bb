"""Training charts: small server-side SVGs rendered with the page, no chart library, no JavaScript."""

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD = 320, 160, 28
COLOURS = ("#2563eb", "#f97316", "#16a34a", "#9333ea")


@register.inclusion_tag("training/_line_chart.html")
def line_chart(history, keys, title, percent=False):
    """One polyline per key of the epoch records, x = epoch."""
    keys = [k for k in keys.split(",") if any(r.get(k) is not None for r in history or [])]
    values = [r[k] for r in history or [] for k in keys if r.get(k) is not None]
    if not values:
        return {"title": title, "series": []}
    low, high = (0.0, 1.0) if percent else (min(0.0, min(values)), max(values) or 1.0)
    epochs = [r["epoch"] for r in history]
    first, last = min(epochs), max(max(epochs), min(epochs) + 1)

    def x(epoch):
        return PAD + (WIDTH - 2 * PAD) * (epoch - first) / (last - first)

    def y(value):
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / ((high - low) or 1.0)

    series = []
    for colour, key in zip(COLOURS, keys, strict=False):
        points = [(x(r["epoch"]), y(r[key])) for r in history if r.get(key) is not None]
        latest = next(r[key] for r in reversed(history) if r.get(key) is not None)
        series.append({"key": key, "colour": colour, "latest": latest * 100 if percent else latest,
                       "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in points),
                       "last": points[-1]})
    return {"title": title, "series": series, "width": WIDTH, "height": HEIGHT, "pad": PAD, "percent": percent,
            "high": high * 100 if percent else high, "low": low * 100 if percent else low, "first": first,
            "last": last, "bottom": HEIGHT - PAD, "right": WIDTH - PAD}


@register.inclusion_tag("training/_confusion.html")
def confusion_matrix(matrix, class_names):
    """A heat-map table: row = true class, column = predicted class, darker = more images."""
    peak = max((v for row in matrix or [] for v in row), default=0) or 1
    rows = [{"name": name, "cells": [{"value": v, "alpha": round(0.08 + 0.82 * v / peak, 2), "diagonal": i == j}
                                     for j, v in enumerate(row)]}
            for i, (name, row) in enumerate(zip(class_names, matrix or [], strict=False))]
    return {"rows": rows, "class_names": class_names}
