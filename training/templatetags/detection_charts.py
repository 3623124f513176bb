"""Detection results as server-side SVG: PR curves per class, and validation images with true and predicted boxes."""

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD = 320, 200, 28
COLOURS = ("#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777")


def colour(index: int) -> str:
    return COLOURS[int(index) % len(COLOURS)]


@register.inclusion_tag("training/_pr_curves.html")
def pr_curves(pr_curve):
    """Precision against recall at IoU 0.5, one polyline per class."""
    recall = (pr_curve or {}).get("recall") or []
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    series = []
    for index, (name, precision) in enumerate(((pr_curve or {}).get("precision") or {}).items()):
        points = " ".join(f"{PAD + inner_w * r:.1f},{HEIGHT - PAD - inner_h * p:.1f}"
                          for r, p in zip(recall, precision, strict=False))
        series.append({"name": name, "colour": colour(index), "points": points})
    return {"series": series, "width": WIDTH, "height": HEIGHT, "pad": PAD, "bottom": HEIGHT - PAD,
            "right": WIDTH - PAD}


@register.inclusion_tag("training/_detection_sample.html")
def detection_sample(sample, class_names):
    """One validation image: true boxes dashed green, predictions in their class colour with the score."""
    names = list(class_names or [])

    def label(cls):
        return names[cls] if 0 <= cls < len(names) else str(cls)

    # Drawn in the image's own pixels, so line width and text follow its size, not the page's.
    side = max(sample.get("width", 0), sample.get("height", 0)) or 1
    stroke = side / 200
    true = [{"x": b["box"][0], "y": b["box"][1], "w": b["box"][2] - b["box"][0], "h": b["box"][3] - b["box"][1],
             "label": label(b["cls"])} for b in sample.get("true", [])]
    predicted = [{"x": b["box"][0], "y": b["box"][1], "w": b["box"][2] - b["box"][0], "h": b["box"][3] - b["box"][1],
                  "label": f"{label(b['cls'])} {b['conf']:.2f}", "colour": colour(b["cls"])}
                 for b in sample.get("predicted", [])]
    return {"sample": sample, "true": true, "predicted": predicted, "stroke": round(stroke, 2),
            "font": round(side / 28, 1)}
