"""Form fields for a stage's declared options (tango_common.options, Stage.options): the pages' "Advanced
training options", with the same types and bounds the API checks (project_validate runs the schema again on save).

Use from any form that edits a project's options (the settings page, the wizard):

    add_training_option_fields(form, task=..., current=project.options.get("train", {}))   # in __init__
    options = {**project.options, "train": training_options_value(form, current)}       # when saving
    {% include "projects/_training_options.html" with fields=form.training_option_fields %}  # in the template

Every field is optional: empty means "chosen when the run starts" (training.engine.defaults derives it from the
dataset), so a user sets only what they mean to.
"""

from django import forms

from .jobs.registry import stage_exists, stage_get

PREFIX = "train_"
STAGE = "train"


def _field(option) -> forms.Field:
    common = {"required": False, "label": option.label or option.name, "help_text": option.help}
    if option.kind == "int":
        return forms.IntegerField(min_value=option.low, max_value=option.high, **common)
    if option.kind == "float":
        return forms.FloatField(min_value=option.low, max_value=option.high,
                                widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if option.kind == "choice":
        default = f"default ({option.default})" if option.default is not None else "default (from the dataset)"
        return forms.ChoiceField(choices=[("", default), *((c, c) for c in option.choices)], **common)
    if option.kind == "bool":
        return forms.TypedChoiceField(choices=[("", "default"), ("true", "yes"), ("false", "no")],
                                      coerce=lambda v: v == "true", empty_value=None, **common)
    raise ValueError(f"option {option.name}: no form field for kind {option.kind!r}")


def advanced_options(task: str) -> list:
    if not stage_exists(STAGE):
        return []
    return [o for o in stage_get(STAGE).options if o.advanced and o.applies_to(task) and o.kind != "group"]


def add_training_option_fields(form: forms.Form, *, task: str, current: dict | None = None) -> None:
    """Add the advanced training options to the form as optional fields named train_<option>, with the project's
    current values as initial ones; `form.training_option_fields` lists their bound fields for the template."""
    current = current or {}
    names = []
    for option in advanced_options(task):
        name = PREFIX + option.name
        form.fields[name] = _field(option)
        value = current.get(option.name)
        # setdefault: a redraw's initial values are what the user has typed so far (the settings page redraws when
        # the device or engine changes), which the project's saved ones must not overwrite.
        if value is not None:
            form.initial.setdefault(name, ("true" if value else "false") if option.kind == "bool" else value)
        names.append(name)
    form.training_option_names = names
    form.training_option_fields = [form[name] for name in names]


def training_options_value(form: forms.Form, current: dict | None = None) -> dict:
    """The project's options["train"] after the form: the advanced options as entered (an empty field removes the
    option, so the default applies again), every other option kept as it was."""
    values = dict(current or {})
    for name in getattr(form, "training_option_names", []):
        key, value = name[len(PREFIX):], form.cleaned_data.get(name)
        if value in (None, ""):
            values.pop(key, None)
        else:
            values[key] = value
    return values
