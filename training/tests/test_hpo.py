"""Hyperparameter search: real Optuna studies in a real SQLite database, shared by several runs."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from training.engine import hpo

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(params, on_epoch):
    """Peaks at lr = 0.03: a cheap stand-in for a training run that reports every epoch."""
    import math

    score = 0.0
    for epoch in range(1, 4):
        score = epoch / 3 * math.exp(-abs(math.log10(params["lr"] / 0.03)))
        on_epoch(epoch, score)
    return score


def test_trials_from_two_runs_share_one_study_and_one_trial_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    lines = []
    budget = hpo.Budget(trials=10, minutes=5)
    first = hpo.study_run(study=hpo.study_open(storage_url=url, name="p1"), task="classification",
                          objective=_objective, budget=hpo.Budget(trials=4, minutes=5),
                          report=lambda line=None, progress=None: lines.append(line))
    # A second worker joins the same study (by name, in the same database) and stops at the shared total.
    summary = hpo.study_run(study=hpo.study_open(storage_url=url, name="p1"), task="classification",
                            objective=_objective, budget=budget, report=lambda *a, **k: None)
    assert len(first["trials"]) == 4 and len(summary["trials"]) == 10
    assert {t["state"] for t in summary["trials"]} <= {"complete", "pruned"}
    assert summary["best"]["value"] == max(t["value"] for t in summary["trials"] if t["value"] is not None)
    bests = [point["best"] for point in summary["best_curve"]]
    assert bests == sorted(bests)  # best-so-far never goes down
    assert set(summary["best"]["params"]) == {p.name for p in hpo.SPACES["classification"]}
    assert summary["importances"] and max(summary["importances"], key=summary["importances"].get) == "lr"
    assert any(line.startswith("trial 0: lr=") for line in lines if line)


def test_a_trial_below_the_median_is_pruned_at_its_epoch(tmp_path):
    study = hpo.study_open(storage_url=f"sqlite:///{tmp_path / 's.db'}", name="p")

    def objective(params, on_epoch):  # every later trial is worse than the first ones at every epoch
        value = 1.0 / (1 + len(study.trials))
        for epoch in range(1, 4):
            on_epoch(epoch, value)
        return value

    summary = hpo.study_run(study=study, task="classification", objective=objective,
                            budget=hpo.Budget(trials=6, minutes=5), report=lambda *a, **k: None)
    pruned = [t for t in summary["trials"] if t["state"] == "pruned"]
    assert pruned and all(t["last_step"] == 1 for t in pruned)  # stopped at the first epoch past the warm-up


WORKER = textwrap.dedent("""
    import sys, time
    from training.engine import hpo
    study = hpo.study_open(storage_url=sys.argv[1], name="p", heartbeat_s=1, grace_s=2)
    def objective(params, on_epoch):
        print("started", flush=True)
        time.sleep(600)
    hpo.study_run(study=study, task="classification", objective=objective, budget=hpo.Budget(trials=3),
                  report=lambda *a, **k: None)
""")


def test_a_killed_workers_trial_is_marked_failed_and_the_study_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert worker.stdout.readline().strip() == "started"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(3)  # past the grace period: the dead trial's heartbeat is stale
    study = hpo.study_open(storage_url=url, name="p", heartbeat_s=1, grace_s=2)
    summary = hpo.study_run(study=study, task="classification", objective=_objective,
                            budget=hpo.Budget(trials=3, minutes=5), report=lambda *a, **k: None)
    states = [t["state"] for t in summary["trials"]]
    assert states[0] == "fail" and states.count("complete") + states.count("pruned") == 2


@pytest.mark.parametrize("task", sorted(hpo.SPACES))
def test_every_search_space_suggests_each_of_its_parameters(task):
    trial = optuna.create_study().ask()
    params = {p.name: p.suggest(trial) for p in hpo.SPACES[task]}
    assert set(params) == {p.name for p in hpo.SPACES[task]}


def test_a_run_stops_when_its_minutes_are_spent_even_with_trials_left(tmp_path):
    def slow(params, on_epoch):
        time.sleep(0.4)
        return _objective(params, on_epoch)

    study = hpo.study_open(storage_url=f"sqlite:///{tmp_path / 'studies.db'}", name="p1")
    started = time.monotonic()
    summary = hpo.study_run(study=study, task="classification", objective=slow,
                            budget=hpo.Budget(trials=100, minutes=1.5 / 60), report=lambda *a, **k: None)
    # Optuna checks the time between trials: the run ends after the trial that crosses 1.5 s.
    assert 1 <= len(summary["trials"]) < 100
    assert time.monotonic() - started < 1.5 + 2 * 0.4 + 5
