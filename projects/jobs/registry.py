"""The pipeline's stages. Each app registers its own from its AppConfig.ready(); the runtime names none of them.

A catalog stage (catalog=True) belongs to no project: its jobs have no project, staff start them (from a page of the
app that registered it, or the API), and they never appear in a project's pipeline. Its runner gets a job whose
`params` hold what it was started with.

A stage's runner is `run(job, report) -> dict`, named by dotted path and imported only when a worker runs it, so
the web process never loads torch. The pipeline order is `order` (then key); `requires` says which stages must
have succeeded before this one may start.
"""

from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.db import models
from django.utils.module_loading import import_string

from tango_common.options import Option


class Queue(models.TextChoices):
    """Celery queues: `gpu` is consumed by workers on GPU hosts (training, NAS, TensorRT builds)."""

    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


def queue_label(queue: str) -> str:
    """Where a job runs, in words ("GPU queue"). Embedded (no Redis), one worker on this server takes both queues
    whether or not the server has a GPU, so naming the "gpu" queue there would promise a GPU that may not exist."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return "this server's worker"
    return f"{Queue(queue).label if queue in Queue.values else queue} queue"


def queue_phrase(queue: str) -> str:
    """"… queued for this server's worker." / "… queued on the GPU queue." """
    label = queue_label(queue)
    return f"for {label}" if label.endswith("worker") else f"on the {label}"


@dataclass(frozen=True)
class Stage:
    key: str  # the URL slug and Job.stage value: lowercase letters, digits, "_" and "-"
    label: str
    runner: str  # dotted path of run(job, report) -> dict
    requires: tuple[str, ...] = ()
    queue: str = Queue.CPU
    result_template: str = ""  # renders `result` (the job's result dict) on the stage card; "" renders nothing
    order: int = 100
    description: str = ""
    preview: str = ""  # dotted path of preview(project) -> str: a line the pipeline panel shows before any run
    optional: bool = False  # run on demand only: automatic mode neither starts nor queues it (e.g. a search)
    # The options it takes from project.options[key], declared with types and bounds (tango_common.options): the
    # API and the pages refuse anything else, and no option is ever a server path.
    options: tuple[Option, ...] = ()
    page: str = ""  # URL name of the stage's own page, reversed with the project's id (the card links to it)
    page_label: str = ""
    # (result key, label) of the 0..1 figures a job's result may hold that say how good the project's model is
    # (e.g. ("best_top1", "top-1")): the projects list shows each project's best.
    scores: tuple[tuple[str, str], ...] = ()
    # A stage of no project (see the module's docstring). Its `page` is reversed without arguments: where its
    # jobs are shown (the job page links back there, and a finished job's console refreshes that page's panel).
    catalog: bool = False

    def run(self, job, report) -> dict:
        return import_string(self.runner)(job, report)

    def preview_line(self, project) -> str:
        return import_string(self.preview)(project) if self.preview else ""


class StageConflict(Exception):
    """Two registrations of one stage key disagree."""


_stages: dict[str, Stage] = {}


def stage_register(stage: Stage) -> Stage:
    """Add a stage to the pipeline. Registering the same stage again is harmless; a different one under a taken
    key is refused (two apps must not fight over a stage)."""
    if stage.queue not in Queue.values:
        raise ValueError(f"Stage {stage.key!r}: unknown queue {stage.queue!r} (known: {', '.join(Queue.values)}).")
    known = _stages.get(stage.key)
    if known is not None and known != stage:
        raise StageConflict(f"Stage {stage.key!r} is registered twice, differently: {known} and {stage}.")
    _stages[stage.key] = stage
    return stage


def stages() -> tuple[Stage, ...]:
    """The registered project stages in pipeline order (catalog stages are not a project's)."""
    return tuple(sorted((s for s in _stages.values() if not s.catalog), key=lambda s: (s.order, s.key)))


def catalog_stage_exists(key: str) -> bool:
    return key in _stages and _stages[key].catalog


def stage_get(key: str) -> Stage:
    """The stage registered under key; KeyError when none is."""
    return _stages[key]


def stage_exists(key: str) -> bool:
    """A project stage is registered under key (catalog stages: catalog_stage_exists)."""
    return key in _stages and not _stages[key].catalog


def pipeline_stages() -> tuple[Stage, ...]:
    """The stages automatic mode runs, in order: every stage that is not optional."""
    return tuple(s for s in stages() if not s.optional)


def stage_next(key: str) -> Stage | None:
    """The pipeline stage after this one (automatic mode queues it), or None after the last."""
    keys = [s.key for s in pipeline_stages()]
    if key not in keys:
        return None  # an optional stage queues nothing after it
    following = keys.index(key) + 1
    return stage_get(keys[following]) if following < len(keys) else None


# Top-level project options that belong to no stage: the model the user picked (a zoo or searched-subnet name).
PROJECT_OPTIONS = (Option("model", "name", label="the model to train (picked on the project page)"),)


def options_schema() -> tuple[Option, ...]:
    """What project.options may hold: the model, and one group per stage that declares options, under its key."""
    groups = tuple(Option(s.key, "group", label=f"{s.label} options", schema=s.options) for s in stages() if s.options)
    return PROJECT_OPTIONS + groups


def score_keys() -> list[tuple[str, str, tuple[str, ...]]]:
    """(result key, label, stage keys whose results hold it) for every score a stage declares."""
    found: dict[str, tuple[str, list[str]]] = {}
    for stage in stages():
        for key, label in stage.scores:
            found.setdefault(key, (label, []))[1].append(stage.key)
    return [(key, label, tuple(keys)) for key, (label, keys) in found.items()]


def stage_choices() -> list[tuple[str, str]]:
    """Every stage, catalog ones included (the API filters jobs by any of them)."""
    return [(s.key, s.label) for s in sorted(_stages.values(), key=lambda s: (s.catalog, s.order, s.key))]


@contextmanager
def stage_overridden(key: str, **changes):
    """The registered stage with some fields changed, until the block ends (tests swap a runner for a double)."""
    original = _stages[key]
    _stages[key] = replace(original, **changes)
    try:
        yield _stages[key]
    finally:
        _stages[key] = original
