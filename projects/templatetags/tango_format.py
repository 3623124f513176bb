"""Formats the pages share: `{% load tango_format %}`, then `|percent`, `|si`, `|engine_label`."""

from django import template

from tango_common.engines import ENGINES

register = template.Library()


@register.filter
def percent(value, digits=1):
    try:
        return f"{100 * float(value):.{int(digits)}f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def si(value):
    """11173962 → "11.2 M": counts people read at a glance (parameters, FLOPs)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    for factor, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(number) >= factor:
            return f"{number / factor:.1f}{suffix}"
    return f"{number:g}"


@register.filter
def engine_label(key):
    """"onnxruntime" → "ONNX Runtime": people read engine names, not the keys the records store."""
    engine = ENGINES.get(key)
    return engine.label if engine else key
