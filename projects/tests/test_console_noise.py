"""A job's console holds what the user can act on: libraries' housekeeping stays out of it, real warnings stay in."""

import logging
import warnings

import pytest
import torch

from projects.tests import factories
from projects.tests.stage_runs import run_stage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def worker_warnings():
    """Warnings go to logging as in the Celery worker (celery.app.log calls logging.captureWarnings(True))."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        logging.captureWarnings(True)
        yield
        logging.captureWarnings(False)


def test_the_recommend_console_hides_library_notices_but_keeps_real_warnings(worker_warnings, tmp_path,
                                                                              monkeypatch):
    from matplotlib import font_manager

    scripted = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    from recommender import services

    real_run = services.recommend_stage

    def run_with_library_noise(job, report):
        font_manager._load_fontmanager(try_read_cache=False)  # logs "generated new fontManager" at INFO
        torch.jit.load(str(scripted))  # FutureWarning: `torch.jit.load` is deprecated
        warnings.warn("calibration set is smaller than asked", UserWarning, stacklevel=2)
        return real_run(job, report)

    monkeypatch.setattr(services, "recommend_stage", run_with_library_noise)
    team = factories.team_with("Vision", alice="owner")
    job = run_stage(factories.training_project(team, epochs=1), "recommend")

    console = "\n".join(job.log_lines.values_list("text", flat=True))
    assert "fontManager" not in console and "jit.load" not in console
    assert "UserWarning: calibration set is smaller than asked" in console
    assert "Recommend succeeded." in console
