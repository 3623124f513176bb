"""Page forms. They check the shape of the input; the cross-field rules live in projects.services
(project_validate and friends), whose ValidationErrors `attach_errors` hangs on the fields they name."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from .access import datasets_for, editable_teams_for
from .dataset_stats import image_side, suggested_input_size
from .devices import active_devices, device_catalog, device_model
from .engine_support import (
    engine_choices,
    first_enabled,
    precision_choices,
)
from .models import Dataset, Precision, Project, RunMode, Task
from .options_form import PREFIX as OPTION_PREFIX
from .options_form import add_training_option_fields, training_options_value


def attach_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where the form has the field, on top otherwise."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def attach_refusals(form: forms.Form, refusals: dict[str, str]) -> None:
    """Show why the upload guard refused a file (projects.uploads) on the form's field, in place of the "This field is
    required." that its absence would otherwise get. The name and size checks are the guard's, made as the file
    streamed in (services.guard_dataset_upload); what is inside a zip is dataset_create's to check."""
    for name in form.fields:
        if message := refusals.get(form.add_prefix(name)):
            form.errors.pop(name, None)
            form.add_error(name, message)


def _team_field(user) -> forms.ModelChoiceField:
    teams = editable_teams_for(user)
    field = forms.ModelChoiceField(queryset=teams, empty_label=None)
    field.help_text = "Only teams where you are an editor or owner."
    return field


# --- datasets --------------------------------------------------------------------------------------------------


# Every file the importer demands: the detection help once left out data.yaml, which an upload is refused without.
UPLOAD_LAYOUTS = {
    Task.CLASSIFICATION: "One folder per class (optionally under train/ and val/).",
    Task.DETECTION: "images/, YOLO labels/ (one .txt per image: class cx cy w h, normalised) and a data.yaml whose "
                    "names: lists the classes.",
}


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=100)
    task = forms.ChoiceField(choices=Task.choices, widget=forms.RadioSelect)
    file = forms.FileField(
        label="Zip archive",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    # The page shows the layout of the task picked above the file (each one's, switched by the radio in CSS).
    layouts = [(task.value, task.label, UPLOAD_LAYOUTS[task]) for task in Task]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {"team": _team_field(user), **self.fields}


# --- project creation wizard: one form per step -------------------------------------------------------------
# Each takes `state`, the cleaned values of the steps before it (see projects.wizard).


class BasicsStepForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    task = forms.ChoiceField(choices=Task.choices, widget=forms.RadioSelect)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {"team": _team_field(user), **self.fields}

    def clean(self):
        cleaned = super().clean()
        team, name = cleaned.get("team"), cleaned.get("name")
        # Checked here as well as in project_create so the clash shows on step one, not after step five.
        if team and name and Project.objects.filter(team=team, name=name).exists():
            self.add_error("name", f"{team} already has a project named {name!r}.")
        return cleaned


class DatasetStepForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.team, self.task = state["team"], state["task"]
        self.task_label = Task(self.task).label
        choices = datasets_for(user).filter(team=self.team, task=self.task)
        self.fields["dataset"].queryset = choices
        if len(choices) == 1:  # one candidate: save a click
            self.fields["dataset"].initial = choices[0].pk


class WizardUploadForm(forms.Form):
    """The dataset step's own upload (no second tab): the team and task are the wizard's. Prefixed "upload-" so
    its fields never clash with the wizard's hidden answers."""

    prefix = "upload"
    use_required_attribute = False  # its fields sit inside the wizard's form: Next must not demand a file
    name = forms.CharField(max_length=100, label="Dataset name")
    file = forms.FileField(
        label="Zip archive", widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}))

    def __init__(self, *args, task: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = UPLOAD_LAYOUTS[task]  # the wizard's task only: it was picked on step one


class DeviceStepForm(forms.Form):
    device = forms.ModelChoiceField(queryset=None, widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = active_devices()
        self.card_template = device_catalog().card_template

    @property
    def devices(self):
        return device_catalog().ordered(self.fields["device"].queryset)

    @property
    def device_groups(self) -> list[tuple[str, list]]:
        """(label, devices): cloud, Kubernetes, PC, Jetson, phones, boards, as the catalog groups them."""
        return device_catalog().groups(self.fields["device"].queryset)


class ChoiceSelect(forms.Select):
    """A Select whose options can be disabled, each with its reason as the option's title (projects.engine_support).
    `reasons` maps a value to why it cannot be chosen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reasons: dict[str, str] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if reason := self.reasons.get(str(value)):
            option["attrs"].update(disabled=True, title=reason)
            option["label"] = f"{label} — not available"
        return option


def _offer(field: forms.Field, choices) -> list:
    """Put projects.engine_support's choices on a field: every one listed, refused ones disabled with the reason
    (on the option, and under the field where a pointer is not needed to read it)."""
    field.widget.choices = [(c.value, c.label) for c in choices]
    field.widget.reasons = {c.value: c.problem for c in choices if not c.enabled}
    field.unavailable = [(c.label, c.problem) for c in choices if not c.enabled]
    return choices


def offer_environment(form: forms.Form, *, task: str, device, refresh: bool = False) -> None:
    """The engines the device runs and the chosen engine's precisions, what this version cannot build disabled
    with why: the wizard's environment step and the settings page offer them the same way, and both redraw the
    form (htmx, `projects/_environment_fields.html`) when the engine or the device changes. refresh: a redraw
    after a change, where an engine the new device cannot use (or a precision the new engine cannot give) moves
    to the first one that can, rather than leaving a choice that saving would refuse."""
    engines = _offer(form.fields["engine"], engine_choices(task=task, device=device))
    engine = _current(form, "engine") or ""
    if refresh or not engine:
        engine = form.initial["engine"] = first_enabled(engines, preferred=engine) or ""
    precisions = _offer(form.fields["precision"], precision_choices(task=task, engine=engine))
    if refresh:
        form.initial["precision"] = first_enabled(precisions, preferred=_current(form, "precision")) or ""


def _current(form: forms.Form, name: str):
    """The field's value as sent or as first shown, read without its BoundField (which would keep the value it read
    now, before offer_environment moves it)."""
    if form.is_bound:
        return form.data.get(form.add_prefix(name))
    return form.get_initial_for_field(form.fields[name], name)


class EnvironmentStepForm(forms.Form):
    # Plain CharFields with Select widgets: the widget offers what the device runs, with what the pipeline cannot
    # build disabled and explained; an out-of-list value reaches project_validate, whose message says *why*.
    engine = forms.CharField(widget=ChoiceSelect)
    precision = forms.CharField(widget=ChoiceSelect)
    input_size = forms.IntegerField(label="Input size (px)")
    latency_budget_ms = forms.FloatField(label="Latency budget (ms)", required=False)
    memory_limit_mb = forms.IntegerField(label="Memory limit (MiB)", required=False,
                                         help_text="Optional cap below the device's memory.")
    run_mode = forms.ChoiceField(choices=RunMode.choices, widget=forms.RadioSelect)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device = state["device"]
        task = state["task"]
        offer_environment(self, task=task, device=device)
        self.fields["memory_limit_mb"].help_text = (f"Optional cap below {device.name}'s {device.memory_mb} MiB. "
                                                    f"Empty: all of it.")
        # Empty unless the user sets one, like every field marked optional; the device's typical budget shows as
        # the placeholder and applies when it stays empty (so a device picked again later brings its own).
        typical = f"{device.default_latency_budget_ms:g}"
        self.fields["latency_budget_ms"].widget.attrs["placeholder"] = typical
        self.fields["latency_budget_ms"].help_text = (f"Per image on the device. Empty: {typical} ms, "
                                                      f"{device.name}'s typical budget.")
        # No min/max attributes: the browser's own bubble would hide project_validate's message, which says why.
        add_training_option_fields(self, task=task)  # the advanced options, all optional (projects.options_form)
        dataset = state.get("dataset")
        side = image_side(dataset.stats) if dataset is not None else None
        if side:
            self.fields["input_size"].help_text = (f"The dataset's images are about {side} px; "
                                                   f"{suggested_input_size(side, task)} px is suggested.")

    @staticmethod
    def defaults(state: dict, data) -> dict:
        """Initial values when the step is first shown: earlier answers kept where still valid for the device,
        the input size suggested from the dataset's images, the engine and precision the first buildable ones."""
        device, task = state["device"], state["task"]
        # ONNX Runtime where the device runs it: the bundle ships an ONNX model whatever the engine.
        engine = first_enabled(engine_choices(task=task, device=device),
                               preferred=data.get("engine") or "onnxruntime") or ""
        precisions = precision_choices(task=task, engine=engine)
        precision = first_enabled(precisions, preferred=data.get("precision") or Precision.FP32) or ""
        dataset = state.get("dataset")
        side = image_side(dataset.stats) if dataset is not None else None
        return {
            "engine": engine,
            "precision": precision,
            "input_size": data.get("input_size") or suggested_input_size(side, task),
            "latency_budget_ms": data.get("latency_budget_ms") or "",
            "memory_limit_mb": data.get("memory_limit_mb") or "",
            "run_mode": data.get("run_mode") or RunMode.STEP,
            **{name: data[name] for name in data if name.startswith(OPTION_PREFIX) and data[name] != ""},
        }


class ReviewStepForm(forms.Form):
    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)


# --- project edit ----------------------------------------------------------------------------------------------


class ProjectEditForm(forms.ModelForm):
    """Saved through project_update, never form.save(), so the API and the page share one set of rules."""

    class Meta:
        model = Project
        fields = ["name", "description", "dataset", "device", "engine", "precision", "input_size",
                  "latency_budget_ms", "memory_limit_mb", "run_mode"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "run_mode": forms.RadioSelect,
        }
        labels = {"input_size": "Input size (px)", "latency_budget_ms": "Latency budget (ms)",
                  "memory_limit_mb": "Memory limit (MiB)"}

    def __init__(self, *args, refresh: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        project = self.instance
        self.fields["dataset"].queryset = Dataset.objects.filter(team=project.team, task=project.task)
        # A retired device stays selectable for the project already on it; project_validate says it is retired.
        self.fields["device"].queryset = devices = device_model().objects.filter(
            Q(is_active=True) | Q(pk=project.device_id))
        # The engines of the device picked in this form (the page redraws it when the device or engine changes),
        # as the wizard offers them; project_validate still checks on save.
        self.fields["engine"].widget = ChoiceSelect()
        self.fields["precision"].widget = ChoiceSelect()
        device = devices.filter(pk=_pk(_current(self, "device"))).first() or project.device
        offer_environment(self, task=project.task, device=device, refresh=refresh)
        add_training_option_fields(self, task=project.task, current=(project.options or {}).get("train"))

    def changes(self) -> dict:
        changes = {name: self.cleaned_data[name] for name in self.Meta.fields}
        options = dict(self.instance.options or {})
        train = training_options_value(self, options.get("train"))
        if train:
            options["train"] = train
        else:
            options.pop("train", None)
        return {**changes, "options": options}



def _pk(value) -> int | None:
    """A submitted primary key, or None when it is not one (a tampered field)."""
    try:
        return int(getattr(value, "pk", value))
    except (TypeError, ValueError):
        return None
