"""Page forms. They check the shape of the input; the cross-field rules live in projects.services
(project_validate and friends), whose ValidationErrors `attach_errors` hangs on the fields they name."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from tango_common.engines import ENGINE_CHOICES, ENGINES

from .access import datasets_for, editable_teams_for
from .devices import active_devices, device_catalog, device_model
from .models import Dataset, Precision, Project, RunMode, Task


def attach_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where the form has the field, on top otherwise."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def _team_field(user) -> forms.ModelChoiceField:
    teams = editable_teams_for(user)
    field = forms.ModelChoiceField(queryset=teams, empty_label=None)
    field.help_text = "Only teams where you are an editor or owner."
    return field


# --- datasets --------------------------------------------------------------------------------------------------


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=100)
    task = forms.ChoiceField(choices=Task.choices, widget=forms.RadioSelect)
    file = forms.FileField(
        label="Zip archive",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
        help_text="Classification: one folder per class (optionally under train/ and val/). "
                  "Detection: images/ and YOLO labels/.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {"team": _team_field(user), **self.fields}

    def clean_file(self):
        # A cheap early check, so an obviously wrong file is refused before it is spooled to disk.
        # Everything about the archive's contents is the validator's job (dataset_create).
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".zip"):
            raise ValidationError(f"{upload.name} is not a .zip archive; zip the dataset's folder and upload that.")
        return upload


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


class DeviceStepForm(forms.Form):
    device = forms.ModelChoiceField(queryset=None, widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = active_devices()
        self.card_template = device_catalog().card_template

    @property
    def devices(self):
        return device_catalog().ordered(self.fields["device"].queryset)


class EnvironmentStepForm(forms.Form):
    # Plain CharFields with Select widgets: the widget offers only what the device and engine support, while an
    # out-of-list value reaches project_validate, whose message says *why* ("Odroid does not run TensorRT …").
    engine = forms.CharField(widget=forms.Select)
    precision = forms.CharField(widget=forms.Select)
    input_size = forms.IntegerField(label="Input size (px)")
    latency_budget_ms = forms.FloatField(label="Latency budget (ms)", required=False,
                                         help_text="Per image on the device. Empty: the device's default.")
    memory_limit_mb = forms.IntegerField(label="Memory limit (MiB)", required=False, min_value=1,
                                         help_text="Optional cap below the device's memory.")
    run_mode = forms.ChoiceField(choices=RunMode.choices, widget=forms.RadioSelect)

    def __init__(self, *args, user, state, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device = state["device"]
        self.fields["engine"].widget.choices = [(k, ENGINES[k].label) for k in device.engines if k in ENGINES]
        engine = ENGINES.get(self["engine"].value() or "")
        precisions = engine.precisions if engine else Precision.values
        self.fields["precision"].widget.choices = [(p, Precision(p).label) for p in precisions]

    @staticmethod
    def defaults(state: dict, data) -> dict:
        """Initial values when the step is first shown: earlier answers kept where still valid for the device."""
        device = state["device"]
        engine = data.get("engine") if data.get("engine") in device.engines else device.engines[0]
        precisions = ENGINES[engine].precisions if engine in ENGINES else ()
        precision = data.get("precision") if data.get("precision") in precisions else _default_precision(precisions)
        return {
            "engine": engine,
            "precision": precision,
            "input_size": data.get("input_size") or (640 if state["task"] == Task.DETECTION else 224),
            "latency_budget_ms": data.get("latency_budget_ms") or f"{device.default_latency_budget_ms:g}",
            "memory_limit_mb": data.get("memory_limit_mb") or "",
            "run_mode": data.get("run_mode") or RunMode.STEP,
        }


def _default_precision(precisions) -> str:
    return Precision.FP32 if Precision.FP32 in precisions else (precisions[0] if precisions else Precision.FP32)


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
            "engine": forms.Select(choices=ENGINE_CHOICES),
            "run_mode": forms.RadioSelect,
        }
        labels = {"input_size": "Input size (px)", "latency_budget_ms": "Latency budget (ms)",
                  "memory_limit_mb": "Memory limit (MiB)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        project = self.instance
        self.fields["dataset"].queryset = Dataset.objects.filter(team=project.team, task=project.task)
        # A retired device stays selectable for the project already on it; project_validate says it is retired.
        self.fields["device"].queryset = device_model().objects.filter(Q(is_active=True) | Q(pk=project.device_id))

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

