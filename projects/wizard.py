"""The project creation wizard: task → dataset → target device → environment and budget → review.

The dataset step uploads a new dataset in place (action "upload"): checked by dataset_create like any upload, then
picked. Create starts the pipeline when the run mode is automatic.

The answers travel in hidden fields, so two wizards in two tabs cannot clobber each other. Every POST re-validates
the earlier steps from what it carries: a tampered or stale value (a dataset deleted meanwhile, a team the user no
longer edits) sends the user back to the step that owns it. Nothing is written before project_create, which applies
the same rules again.

A reload or the browser's Back started the wizard over: the answers lived only in the page. Each POST also keeps
them in the user's session as a draft (`Drafts`), under an id the wizard's URL carries (?draft=…&step=…); a GET of
that URL redraws the step from the draft through `ProjectWizard.resume`, which re-validates the earlier steps as a
POST does. One draft per wizard, so two tabs still do not clobber each other; Create drops it.
"""

import secrets
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from tango_common.engines import ENGINES

from . import forms as f
from .engine_support import precision_label
from .models import Precision, Project, RunMode, Task
from .options_form import PREFIX as OPTION_PREFIX
from .options_form import advanced_options
from .services import dataset_create, project_create, project_review, project_start_if_automatic, project_validate


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    form_class: type[forms.Form]
    fields: tuple[str, ...]  # the project's inputs it asks for
    training_options: bool = False  # it also asks for the train stage's advanced options (projects.options_form)

    def names(self) -> tuple[str, ...]:
        """Every field it posts: its inputs, and the advanced training options' fields where it shows them."""
        if not self.training_options:
            return self.fields
        return self.fields + tuple(OPTION_PREFIX + o.name for o in advanced_options(None))


STEPS = (
    Step("basics", "Task", f.BasicsStepForm, ("team", "name", "description", "task")),
    Step("dataset", "Dataset", f.DatasetStepForm, ("dataset",)),
    Step("device", "Target device", f.DeviceStepForm, ("device",)),
    Step("environment", "Environment & budget", f.EnvironmentStepForm,
         ("engine", "precision", "input_size", "latency_budget_ms", "memory_limit_mb", "run_mode"),
         training_options=True),
    Step("review", "Review", f.ReviewStepForm, ()),
)
STEP_INDEX = {s.key: i for i, s in enumerate(STEPS)}
PROJECT_INPUTS = tuple(name for s in STEPS for name in s.fields if name != "team")


@dataclass
class WizardPage:
    """What the template needs to draw one step, or the project once it is created."""

    index: int
    form: forms.Form | None = None
    carried: list[tuple[str, str]] = field(default_factory=list)
    review: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the Review step's: budget unmeetable, tiny dataset…
    upload_form: forms.Form | None = None  # the dataset step's own upload
    created: Project | None = None
    started: str = ""  # after Create in automatic mode: what was queued, or why nothing was
    draft: str = ""  # the id its answers are kept under (Drafts), and the URL that redraws this step
    url: str = ""

    @property
    def step(self) -> Step:
        return STEPS[self.index]

    @property
    def steps(self) -> list[tuple[int, Step, str]]:
        """(number, step, "done" | "current" | "todo") for the progress header."""
        return [(i + 1, s, "done" if i < self.index else "current" if i == self.index else "todo")
                for i, s in enumerate(STEPS)]


class ProjectWizard:
    def __init__(self, user, data: QueryDict | None = None, files=None, refusals: dict[str, str] | None = None):
        self.user = user
        self.data = data if data is not None else QueryDict()
        self.files = files
        self.refusals = refusals or {}  # files the upload guard refused as they streamed in, and why
        self.state: dict = {}  # cleaned answers of the steps validated so far

    def start(self) -> WizardPage:
        return self._show(0)

    def resume(self, step_key: str) -> WizardPage:
        """A step of a kept draft, as first seen: its answers filled in, the earlier steps checked again (a dataset
        deleted since the reload sends the user back to the step that owns it, as a POST would)."""
        index = STEP_INDEX.get(step_key, 0)
        for earlier in range(index):
            form = self._bind(earlier)
            if not self._accept(form):
                return self._page(earlier, form)
        return self._show(index)

    def answers(self) -> dict[str, list[str]]:
        """What the draft keeps: every step's fields as posted (not the token, the action or files)."""
        return {name: self.data.getlist(name) for s in STEPS for name in s.names() if name in self.data}

    def submit(self) -> WizardPage:
        index = STEP_INDEX.get(self.data.get("step", ""), 0)
        action = self.data.get("action", "next")
        for earlier in range(index):
            form = self._bind(earlier)
            if not self._accept(form):
                return self._page(earlier, form)
        if action == "back":
            return self._show(max(index - 1, 0))
        if action == "refresh":
            return self._refresh(index)
        if action == "upload" and STEPS[index].key == "dataset":
            return self._upload(index)
        form = self._bind(index)
        if not self._accept(form):
            return self._page(index, form)
        if STEPS[index].key == "review":
            return self._create()
        return self._show(index + 1)

    # --- steps ----------------------------------------------------------------------------------------------

    def _bind(self, index: int) -> forms.Form:
        return STEPS[index].form_class(self.data, user=self.user, state=self.state)

    def _show(self, index: int) -> WizardPage:
        """The step as first seen: earlier answers (or defaults) filled in, no errors."""
        step = STEPS[index]
        defaults = getattr(step.form_class, "defaults", None)
        initial = defaults(self.state, self.data) if defaults else {
            name: self.data[name] for name in step.names() if name in self.data}
        return self._page(index, step.form_class(initial=initial, user=self.user, state=self.state))

    def _refresh(self, index: int) -> WizardPage:
        """Redraw the step after a change (an engine picked, a dataset uploaded in another tab).

        Rule errors show at once; "required" errors for fields the user has not reached yet do not.
        """
        form = self._bind(index)
        self._accept(form)
        for name in list(form.errors):
            if name in form.fields and form[name].value() in (None, ""):
                del form.errors[name]
        return self._page(index, form)

    def _upload(self, index: int) -> WizardPage:
        """Keep an uploaded zip as a dataset of the wizard's team and task, then show the step with it picked."""
        upload = f.WizardUploadForm(self.data, self.files, task=self.state["task"])
        f.attach_refusals(upload, self.refusals)
        if upload.is_valid():
            try:
                dataset = dataset_create(team=self.state["team"], name=upload.cleaned_data["name"],
                                         task=self.state["task"], upload=upload.cleaned_data["file"], user=self.user)
            except ValidationError as exc:
                f.attach_errors(upload, exc)
            else:
                self.data = self.data.copy()
                self.data["dataset"] = str(dataset.pk)
                page = self._show(index)
                page.form.uploaded = dataset
                return page
        page = self._page(index, self._bind_quiet(index))
        page.upload_form = upload
        return page

    def _bind_quiet(self, index: int) -> forms.Form:
        """The step bound to what was sent, without nagging about a choice not made yet."""
        form = self._bind(index)
        form.is_valid()
        for name in list(form.errors):
            if name in form.fields and form[name].value() in (None, ""):
                del form.errors[name]
        return form

    def _accept(self, form: forms.Form) -> bool:
        """Validate one step: the form's own checks, then project_validate's for the fields the step owns."""
        if not form.is_valid():
            return False
        self.state.update(form.cleaned_data)
        try:
            project_validate(self._draft())
        except ValidationError as exc:
            own = {name: errors for name, errors in exc.error_dict.items() if name in form.fields}
            if own:
                f.attach_errors(form, ValidationError(own))
                return False
        return True

    def _draft(self) -> Project:
        """An unsaved project from the answers so far, with harmless placeholders for later steps."""
        s = self.state
        return Project(
            team=s.get("team"), task=s.get("task", ""), dataset=s.get("dataset"), device=s.get("device"),
            engine=s.get("engine", ""), precision=s.get("precision") or Precision.FP32,
            # 0 is an answer to refuse, not a missing one: only a step not reached yet gets the placeholder.
            input_size=s["input_size"] if s.get("input_size") is not None else 224,
            latency_budget_ms=s.get("latency_budget_ms"), memory_limit_mb=s.get("memory_limit_mb"),
        )

    def _create(self) -> WizardPage:
        inputs = {name: self.state.get(name) for name in PROJECT_INPUTS}
        if train := self._training_options():
            inputs["options"] = {"train": train}
        try:
            project = project_create(team=self.state["team"], user=self.user, **inputs)
        except ValidationError as exc:
            return self._back_to_owner(exc)
        return WizardPage(index=len(STEPS) - 1, created=project, started=project_start_if_automatic(
            project=project, user=self.user))

    def _back_to_owner(self, exc: ValidationError) -> WizardPage:
        """Show a late error (a name taken meanwhile) on the step whose field it names."""
        names = set(getattr(exc, "error_dict", {}))
        index = next((i for i, s in enumerate(STEPS) if names & set(s.names())), len(STEPS) - 1)
        form = self._bind(index)
        form.is_valid()
        f.attach_errors(form, exc)
        return self._page(index, form)

    # --- what the template draws ------------------------------------------------------------------------

    def _page(self, index: int, form: forms.Form) -> WizardPage:
        _focus_first_error(form)
        review, warnings = self._review(index)
        return WizardPage(index=index, form=form, carried=self._carried(index), review=review, warnings=warnings,
                          upload_form=f.WizardUploadForm(task=self.state["task"]) if STEPS[index].key == "dataset"
                          else None)

    def _carried(self, index: int) -> list[tuple[str, str]]:
        """Answers of every other step, as hidden inputs: earlier ones and any already given further on."""
        return [(name, self.data[name]) for i, s in enumerate(STEPS) if i != index for name in s.names()
                if self.data.get(name, "") != ""]

    def _training_options(self) -> dict:
        """The advanced training options the user set (empty ones are chosen from the dataset when training starts)."""
        return {name[len(OPTION_PREFIX):]: value for name, value in self.state.items()
                if name.startswith(OPTION_PREFIX) and value not in (None, "")}

    def _review(self, index: int) -> tuple[list[tuple[str, str]], list[str]]:
        if STEPS[index].key != "review":
            return [], []
        s = self.state
        engine = ENGINES.get(s["engine"])
        budget = s["latency_budget_ms"] or s["device"].default_latency_budget_ms
        model, warnings = project_review(self._draft())
        rows = [
            ("Team", str(s["team"])), ("Name", s["name"]), ("Task", Task(s["task"]).label),
            ("Dataset", f"{s['dataset']} ({s['dataset'].num_images} images, {len(s['dataset'].class_names)} "
                        f"classes)"),
            ("Device", str(s["device"])),
            ("Engine", engine.label if engine else s["engine"]), ("Precision", precision_label(s["precision"])),
            ("Input size", f"{s['input_size']} px"), ("Latency budget", f"{budget:g} ms"),
            ("Memory limit", f"{s['memory_limit_mb']} MiB" if s["memory_limit_mb"] else "Device memory"),
            ("Run mode", RunMode(s["run_mode"]).label + (" (starts on Create)" if s["run_mode"] == RunMode.AUTO
                                                          else "")),
            ("Training options", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self._training_options().items())
             or "chosen from the dataset when training starts"),
            *([("Model", model)] if model else []),
        ]
        return rows, warnings


class Drafts:
    """The wizards' answers kept in the user's session, one entry per wizard (its id is in the page's URL), so a
    reload or the browser's Back redraws the step the user was on with what they had answered."""

    KEY = "project_wizard_drafts"
    KEEP = 5  # the newest ones; an abandoned wizard's draft goes once five newer ones were started

    def __init__(self, session):
        self.session = session

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(9)

    @staticmethod
    def valid_id(value: str | None) -> str | None:
        return value if value and len(value) <= 24 and value.replace("-", "").replace("_", "").isalnum() else None

    def get(self, draft_id: str) -> dict | None:
        return self.session.get(self.KEY, {}).get(draft_id)

    def save(self, draft_id: str, *, step: str, answers: dict[str, list[str]]) -> None:
        drafts = self.session.get(self.KEY, {})
        previous = drafts.pop(draft_id, None) or {}
        furthest = max(STEP_INDEX[step], STEP_INDEX.get(previous.get("furthest", ""), 0))
        drafts[draft_id] = {"step": step, "furthest": STEPS[furthest].key, "answers": answers}
        self.session[self.KEY] = dict(list(drafts.items())[-self.KEEP:])

    def drop(self, draft_id: str) -> None:
        drafts = self.session.get(self.KEY, {})
        if drafts.pop(draft_id, None) is not None:
            self.session[self.KEY] = drafts

    def page(self, user, draft_id: str, step: str | None) -> WizardPage | None:
        """The step `step` of the draft (its last one when not named; never past the furthest the user reached),
        or None when there is no such draft."""
        draft = self.get(draft_id)
        if draft is None:
            return None
        data = QueryDict(mutable=True)
        for name, values in draft["answers"].items():
            data.setlist(name, values)
        index = min(STEP_INDEX.get(step or draft["step"], 0), STEP_INDEX[draft["furthest"]])
        return ProjectWizard(user, data).resume(STEPS[index].key)


def _focus_first_error(form: forms.Form | None) -> None:
    """Put the cursor (and, through the browser, the view) on the first field with an error: it may be far below
    the top of a long step."""
    if form is None:
        return
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["autofocus"] = True
            return
