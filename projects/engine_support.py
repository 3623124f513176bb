"""What a project may choose: the engines and precisions the pipeline can build for a task on a device.

One pair of functions answers "can it, and if not, why": the wizard draws refused choices disabled with their
reason, and project_validate (pages and API alike) refuses them with the same words. What the convert stage builds
is tango_common.engines.engine_support (deployment's converters fill its table), so a converter that lands
enables its choices here without a change.
"""

from dataclasses import dataclass

from tango_common.engines import ENGINES, engine_problem, engine_support

from .models import Precision, Task

# The engines whose converters build detection models too, through the accuracy guard (head kept in float for
# int8; deployment/tests/test_detect_convert.py, test_tflite_detect.py); the others build classification models only.
TASK_ENGINES = {Task.DETECTION: ("pytorch", "onnxruntime", "openvino", "tensorrt", "tflite")}
TASK_PRECISIONS: dict[str, tuple[str, ...]] = {}


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    problem: str | None  # why it cannot be chosen; None when it can

    @property
    def enabled(self) -> bool:
        return self.problem is None


def precision_label(precision: str) -> str:
    return dict(Precision.choices).get(precision, precision.upper())


def engine_choice_problem(*, task: str, device, engine: str) -> str | None:
    """Why the project cannot use this engine on this device for this task, or None when it can."""
    if engine not in ENGINES:
        return f"Unknown engine {engine!r}."
    label = ENGINES[engine].label
    if device is not None:
        if engine not in device.engines:
            runs = ", ".join(device.engine_labels())
            return f"{device.name} does not run {label}; it runs {runs}."
        if problem := engine_problem(engine, device.accelerator_kind, device.cpu_name):
            return problem
    if engine not in TASK_ENGINES.get(task, (engine,)):
        return f"{label} builds of {Task(task).label.lower()} models are not in this version."
    support = engine_support(engine)
    if not support.built:
        # a converter this server lacks says what to install (a side environment: `./tango engines install …`)
        installable = [why for why in support.unavailable.values() if "not in this version" not in why]
        return installable[0] if installable else (f"{label} builds are not in this version: the convert stage "
                                                   "cannot make one yet.")
    return None


def precision_choice_problem(*, task: str, engine: str, precision: str) -> str | None:
    """Why the project cannot use this precision with this engine for this task, or None when it can."""
    if engine not in ENGINES:
        return None  # the engine's own problem is the one to show
    label = ENGINES[engine].label
    if precision not in Precision.values or precision not in ENGINES[engine].precisions:
        return f"{label} does not support {precision}."
    if problem := precision_task_problem(task=task, precision=precision):
        return problem
    return engine_support(engine).problem(precision)


def precision_task_problem(*, task: str, precision: str) -> str | None:
    """Why no engine can give this task's models this precision in this version, or None."""
    if precision not in TASK_PRECISIONS.get(task, (precision,)):
        return f"{precision_label(precision)} is not available for {Task(task).label.lower()} models in this version."
    return None


def engine_choices(*, task: str, device) -> list[Choice]:
    """The device's engines, each with its problem (None: it can be chosen)."""
    return [Choice(key, ENGINES[key].label, engine_choice_problem(task=task, device=device, engine=key))
            for key in device.engines if key in ENGINES]


def precision_choices(*, task: str, engine: str) -> list[Choice]:
    """The precisions the form knows, each with its problem for this engine and task."""
    if engine not in ENGINES:
        return [Choice(p, precision_label(p), None) for p in Precision.values]
    return [Choice(p, precision_label(p), precision_choice_problem(task=task, engine=engine, precision=p))
            for p in Precision.values if p in ENGINES[engine].precisions]


def first_enabled(choices: list[Choice], preferred: str | None = None) -> str | None:
    enabled = [c.value for c in choices if c.enabled]
    if preferred in enabled:
        return preferred
    return enabled[0] if enabled else None
