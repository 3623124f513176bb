"""The layer form: a node's editable parameters as a Django form, one field per parameter with its type and bounds
(the bounds the graph core enforces), so a wrong value is named next to its field before anything is applied."""

import json
import re

from django import forms


class JSONValueField(forms.CharField):
    """A parameter that is neither a number nor a switch (a tuple, a row's args, a mode): typed as JSON, a bare word
    read as a string."""

    def __init__(self, *, minimum: int | None = None, **kwargs):
        self.minimum = minimum
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        try:
            return json.loads(text)
        except ValueError:
            return text

    def validate(self, value):
        if value in ("", None) and self.required:
            raise forms.ValidationError(f"{self.label} is needed.", code="required")
        if self.minimum is not None:
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise forms.ValidationError(f"{self.label} must be a whole number (or a list of them).")
            if any(v < self.minimum for v in values):
                raise forms.ValidationError(f"{self.label} must be at least {self.minimum}.")


def field_for(key: str, value, *, op: str) -> forms.Field:
    from .graph.layers import NON_NEGATIVE, POSITIVE  # the graph core imports torch: only when a form is built

    attrs = {"data-testid": f"param-{key}"}
    minimum = 1 if key in POSITIVE else 0 if key in NON_NEGATIVE else None
    if isinstance(value, bool):
        return forms.BooleanField(label=key, required=False, widget=forms.CheckboxInput(attrs=attrs))
    if isinstance(value, int):
        return forms.IntegerField(
            label=key,
            min_value=minimum,
            widget=forms.NumberInput(attrs=attrs),
            error_messages={
                "min_value": f"{key} must be at least %(limit_value)s.",
                "invalid": f"{key} must be a whole number.",
                "required": f"{key} is needed.",
            },
        )
    if isinstance(value, float):
        bounds = {"min_value": 0.0, "max_value": 0.999999} if op == "Dropout" and key == "p" else {}
        return forms.FloatField(
            label=key,
            **bounds,
            widget=forms.NumberInput(attrs={**attrs, "step": "any"}),
            error_messages={
                "min_value": f"{key} must be at least %(limit_value)s.",
                "max_value": f"{key} must be below 1.",
                "invalid": f"{key} must be a number.",
                "required": f"{key} is needed.",
            },
        )
    return JSONValueField(label=key, minimum=minimum, required=value is not None, widget=forms.TextInput(attrs=attrs))


class LayerForm(forms.Form):
    """Built from one graph node (kind "module"); `changed` holds the parameters that differ from the node."""

    def __init__(self, node: dict, *args, editable: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node
        for key, value in node["params"].items():
            field = field_for(key, value, op=node["op"])
            field.disabled = not editable
            self.fields[key] = field
            self.initial[key] = json.dumps(value) if isinstance(field, JSONValueField) else value  # shown as JSON
        self.changed: dict = {}

    def clean(self):
        cleaned = super().clean()
        self.changed = {
            key: cleaned[key] for key, value in self.node["params"].items() if key in cleaned and cleaned[key] != value
        }
        return cleaned

    def refused(self, message: str) -> None:
        """The graph core refused the change: the message goes next to the field it names, else above them all."""
        named = [key for key in self.changed if re.search(rf"\b{re.escape(key)}\b", message.split("):")[-1])]
        self.add_error(named[0] if named else None, message)
