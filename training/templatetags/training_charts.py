"""Training charts: small server-side SVGs rendered with the page, no chart library, no JavaScript."""

import math

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD = 320, 160, 28
# One colour per series wherever it is drawn: training curves orange and validation curves blue in the loss chart
# and the accuracy chart alike (a palette handed out by position gave val top-1 the training loss's blue). Keys not
# named here take the fallback palette by position.
TRAIN, VALIDATION = "#f97316", "#2563eb"
SERIES_COLOURS = {"train_loss": TRAIN, "train_top1": TRAIN, "val_loss": VALIDATION, "top1": VALIDATION,
                  "top5": "#0891b2", "box_loss": "#f97316", "cls_loss": "#9333ea", "dfl_loss": "#a16207",
                  "precision": "#16a34a", "recall": "#dc2626", "map50": "#2563eb", "map50_95": "#0891b2"}
COLOURS = ("#2563eb", "#f97316", "#16a34a", "#9333ea")
# Legend names for the epoch records' keys; a key not listed is shown as it is.
SERIES_LABELS = {"train_loss": "train", "val_loss": "validation", "top1": "val top-1", "top5": "val top-5",
                 "train_top1": "train top-1", "box_loss": "box", "cls_loss": "class", "dfl_loss": "DFL",
                 "precision": "precision", "recall": "recall", "map50": "mAP50", "map50_95": "mAP50-95"}


# A loss that spans more than this ratio (one diverged validation epoch at 1e6 beside training losses near 1) is
# drawn on a log scale, or everything but the outlier is a flat line at the bottom.
LOG_SCALE_RATIO = 100


@register.inclusion_tag("training/_line_chart.html")
def line_chart(history, keys, title, percent=False):
    """One polyline per key of the epoch records, x = epoch; y on a log scale when the values need it."""
    keys = [k for k in keys.split(",") if any(r.get(k) is not None for r in history or [])]
    values = [r[k] for r in history or [] for k in keys if r.get(k) is not None]
    if not values:
        return {"title": title, "series": []}
    log_scale = not percent and min(values) > 0 and max(values) / min(values) > LOG_SCALE_RATIO
    if percent:
        low, high = 0.0, 1.0
    elif log_scale:
        low, high = min(values), max(values)
    else:
        low, high = min(0.0, min(values)), max(values) or 1.0
    epochs = [r["epoch"] for r in history]
    first, last = min(epochs), max(max(epochs), min(epochs) + 1)

    def x(epoch):
        return PAD + (WIDTH - 2 * PAD) * (epoch - first) / (last - first)

    def y(value):
        if log_scale:
            fraction = (math.log10(value) - math.log10(low)) / ((math.log10(high) - math.log10(low)) or 1.0)
        else:
            fraction = (value - low) / ((high - low) or 1.0)
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * fraction

    series = []
    for position, key in enumerate(keys):
        colour = SERIES_COLOURS.get(key, COLOURS[position % len(COLOURS)])
        points = [(x(r["epoch"]), y(r[key])) for r in history if r.get(key) is not None]
        latest = next(r[key] for r in reversed(history) if r.get(key) is not None)
        series.append({"key": key, "label": SERIES_LABELS.get(key, key), "colour": colour,
                       "latest": latest * 100 if percent else latest,
                       "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in points),
                       "last": points[-1]})
    scale = 100 if percent else 1
    return {"title": title, "series": series, "width": WIDTH, "height": HEIGHT, "pad": PAD, "percent": percent,
            "log_scale": log_scale, "high": _tick(high * scale), "low": _tick(low * scale), "first": first,
            "last": last, "bottom": HEIGHT - PAD, "right": WIDTH - PAD}


def _tick(value: float) -> str:
    """An axis label that stays short from 1e-4 to 1e6: 0.42, 12, 3.1e+05."""
    return f"{value:.2f}" if 0.01 <= abs(value) < 1000 or value == 0 else f"{value:.2g}"


@register.inclusion_tag("training/_confusion.html")
def confusion_matrix(matrix, class_names):
    """A heat-map table: row = true class, column = predicted class, darker = more images."""
    peak = max((v for row in matrix or [] for v in row), default=0) or 1
    rows = [{"name": name, "cells": [{"value": v, "alpha": round(0.08 + 0.82 * v / peak, 2), "diagonal": i == j}
                                     for j, v in enumerate(row)]}
            for i, (name, row) in enumerate(zip(class_names, matrix or [], strict=False))]
    return {"rows": rows, "class_names": class_names}


@register.inclusion_tag("training/_scatter_chart.html")
def scatter_chart(points, x_key, y_key, title, x_label, y_label, line_key="", label_key="", highlight_key=""):
    """Points (dicts) at (x_key, y_key); y is a fraction shown in %. Optional: a step line through line_key
    (e.g. best so far), a text label per point, and points whose highlight_key is true drawn larger."""
    rows = [p for p in points or [] if p.get(x_key) is not None and p.get(y_key) is not None]
    if not rows:
        return {"title": title, "points": []}
    xs = [p[x_key] for p in rows]
    ys = [p[y_key] for p in rows] + [p[line_key] for p in rows if line_key and p.get(line_key) is not None]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    x_pad = (x_high - x_low) * 0.05 or max(abs(x_high) * 0.05, 1e-9)
    y_pad = (y_high - y_low) * 0.1 or 0.01
    x_low, x_high, y_low, y_high = x_low - x_pad, x_high + x_pad, max(0.0, y_low - y_pad), min(1.0, y_high + y_pad)

    def x(value):
        return PAD + (WIDTH - 2 * PAD) * (value - x_low) / (x_high - x_low)

    def y(value):
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - y_low) / ((y_high - y_low) or 1.0)

    dots = [{"x": round(x(p[x_key]), 1), "y": round(y(p[y_key]), 1), "label": p.get(label_key, "") if label_key else "",
             "big": bool(highlight_key and p.get(highlight_key)),
             "tip": f"{p.get(label_key, '')} {x_label} {p[x_key]:.3g}, {y_label} {100 * p[y_key]:.1f}%"} for p in rows]
    line = (" ".join(f"{x(p[x_key]):.1f},{y(p[line_key]):.1f}" for p in rows if p.get(line_key) is not None)
            if line_key else "")
    return {"title": title, "points": dots, "line": line, "width": WIDTH, "height": HEIGHT, "pad": PAD,
            "bottom": HEIGHT - PAD, "right": WIDTH - PAD, "x_label": x_label, "y_label": y_label,
            "x_low": x_low + x_pad, "x_high": x_high - x_pad, "y_low": y_low * 100, "y_high": y_high * 100}
