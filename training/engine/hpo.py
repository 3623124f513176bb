"""Hyperparameter search with Optuna. Django-free.

The study lives in a relational database (the portal's own: Postgres in team mode), so every worker that runs
`study_run` on the same study name adds trials to it: the search spreads over however many workers take a job.
A worker that dies leaves its trial RUNNING; Optuna's heartbeat marks it FAIL once it has been silent for the
grace period, and the others go on. The trial budget counts trials of every worker together.

The search spaces are declared here once; the objective (one training run with a per-epoch callback) is passed
in, so the same search drives classification and detection.
"""

import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna

Report = Callable[..., None]


class TrialReporter:
    """Handed to the objective: `on_epoch(epoch, metric)` reports the metric and raises TrialPruned when the
    trial should stop; `number` names the trial (for its output folder)."""

    def __init__(self, trial: optuna.Trial, report: Report):
        self.trial, self.report, self.number = trial, report, trial.number

    def __call__(self, epoch: int, value: float) -> None:
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.report(f"trial {self.number}: pruned at epoch {epoch} ({value:.4f} is below the median)")
            raise optuna.TrialPruned()


# objective(params, on_epoch) -> the trial's final metric
Objective = Callable[[dict, TrialReporter], float]

WORKER = f"{socket.gethostname()}:{os.getpid()}"
HEARTBEAT_S = 10
GRACE_S = 60


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "log" | "float" | "int" | "choice"
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()
    label: str = ""

    def suggest(self, trial: optuna.Trial):
        if self.kind == "log":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))


# Names are the training options each task's trainer takes, so a trial's params are a ready set of overrides.
SPACES: dict[str, tuple[Param, ...]] = {
    "classification": (
        Param("lr", "log", 1e-3, 0.3, label="learning rate"),
        Param("weight_decay", "log", 1e-6, 1e-2, label="weight decay"),
        Param("batch_size", "choice", choices=(16, 32, 64), label="batch size"),
        Param("optimizer", "choice", choices=("sgd", "adamw"), label="optimiser"),
        Param("label_smoothing", "float", 0.0, 0.2, label="label smoothing"),
    ),
    # Ultralytics' main training hyperparameters (its own names).
    "detection": (
        Param("lr0", "log", 1e-4, 5e-2, label="initial learning rate"),
        Param("momentum", "float", 0.8, 0.98, label="momentum"),
        Param("weight_decay", "log", 1e-5, 1e-3, label="weight decay"),
        Param("box", "float", 3.0, 10.0, label="box loss gain"),
        Param("cls", "float", 0.2, 2.0, label="class loss gain"),
        Param("hsv_v", "float", 0.0, 0.6, label="brightness jitter"),
        Param("scale", "float", 0.1, 0.7, label="scale jitter"),
        Param("mosaic", "float", 0.0, 1.0, label="mosaic probability"),
    ),
}


# What a trial's value is, per task (detection: mAP50 saturates early on small data, mAP50-95 still separates).
METRICS = {"classification": "val top-1", "detection": "val mAP50-95"}


@dataclass(frozen=True)
class Budget:
    trials: int = 12  # across all workers
    minutes: float = 30.0  # per worker's run
    seed: int = 0


def study_open(*, storage_url: str, name: str, direction: str = "maximize", seed: int = 0,
               heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S) -> optuna.Study:
    with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5, and it is what we rely on
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
            engine_kwargs={"pool_pre_ping": True},
        )
    return optuna.create_study(
        study_name=name, storage=storage, direction=direction, load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        # Prune a trial whose metric at an epoch is below the median of earlier trials at that epoch.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )


def study_run(*, study: optuna.Study, task: str, objective: Objective, budget: Budget, report: Report) -> dict:
    """Run trials until the study holds `budget.trials` finished ones or this worker's time is up."""
    space = SPACES[task]
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)

    def run_trial(trial: optuna.Trial) -> float:
        params = {p.name: p.suggest(trial) for p in space}
        trial.set_user_attr("worker", WORKER)
        report(f"trial {trial.number}: {format_params(params)}")
        started = time.monotonic()
        value = objective(params, TrialReporter(trial, report))
        report(f"trial {trial.number}: {value:.4f} in {time.monotonic() - started:.0f}s")
        return value

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = sum(t.state in finished for t in study.get_trials(deepcopy=False))
        best = _best_value(study)
        report(f"{done}/{budget.trials} trials finished; best so far {best:.4f}" if best is not None
               else f"{done}/{budget.trials} trials finished", progress=100 * min(1.0, done / budget.trials))

    study.optimize(run_trial, timeout=budget.minutes * 60, catch=(FloatingPointError,),
                   callbacks=[optuna.study.MaxTrialsCallback(budget.trials, states=finished), progress])
    return study_summary(study, task=task)


def _best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:  # no trial completed yet
        return None


def study_summary(study: optuna.Study, *, task: str) -> dict:
    """What the page and the API show: every trial, the best-so-far curve, parameter importances, the best."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows, curve, best = [], [], None
    for t in trials:
        value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
        if value is not None and (best is None or _better(study, value, best)):
            best = value
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": value, "params": t.params,
                     "last_step": t.last_step, "seconds": _duration(t), "worker": t.user_attrs.get("worker")})
        if value is not None:
            curve.append({"trial": t.number, "value": value, "best": best})
    return {"task": task, "metric": METRICS[task], "trials": rows, "best_curve": curve,
            "importances": _importances(study), "best": _best_trial(study)}


def _better(study, value: float, than: float) -> bool:
    return value > than if study.direction == optuna.study.StudyDirection.MAXIMIZE else value < than


def _duration(trial) -> float | None:
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def _importances(study: optuna.Study) -> dict[str, float]:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" on few trials: the numbers say so anyway
            warnings.simplefilter("ignore", UserWarning)
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. a parameter that never varied among the complete trials
        return {}


def _best_trial(study: optuna.Study) -> dict | None:
    try:
        trial = study.best_trial
    except ValueError:
        return None
    return {"number": trial.number, "value": trial.value, "params": trial.params}


def format_params(params: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if v and (abs(v) < 1e-2 or abs(v) >= 1e3) else f"{v:.4g}"
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())
