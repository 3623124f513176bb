"""The optional tune stage: a real (tiny-budget) MetaSchedule search on the converted model, reported against the
untuned TVM build and PyTorch eager, stored as a verified TVM artifact."""

import pytest

from deployment import tuning
from deployment.engine.converters.tvm import TvmConverter
from deployment.models import Artifact
from projects.jobs.registry import stage_get

from .test_stages import Report, converted, job_for, project  # noqa: F401 - fixtures
from .training_runs import trained_run

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(TvmConverter().missing() is not None, reason="apache-tvm is not installed")]


@pytest.fixture
def trained(project):  # noqa: F811 - the fixture imported above
    """vgg_tiny, not test_stages' densenet_tiny: TVM makes 13 operator tasks of it where densenet_tiny makes 50, so
    each of the stage's two compilations takes a third of the time; what the stage reports does not depend on it."""
    return trained_run(project, model="vgg_tiny")


def test_tune_is_an_optional_stage_after_convert():
    stage = stage_get("tvm_tune")
    assert stage.optional and stage.requires == ("convert",)


def test_tune_reports_untuned_tuned_and_pytorch_latency_and_keeps_the_accuracy(project, converted):  # noqa: F811
    project.options = {**project.options, "tvm_tune": {"trials": 3, "seconds": 30}}
    project.save()
    report = Report()
    result = tuning.tune_stage(job_for(project, "tvm_tune"), report)
    latency = result["latency"]
    assert latency["pytorch_ms"] > 0 and latency["untuned_ms"] > 0 and latency["tuned_ms"] > 0
    assert latency["speedup_vs_untuned"] == pytest.approx(latency["untuned_ms"] / latency["tuned_ms"], rel=0.02)
    assert result["tuning"]["measured"] >= 1 and result["budget"] == {"trials": 3, "seconds": 30.0}
    assert abs(result["accuracy"]["drop"]) <= 1.0
    row = Artifact.objects.get(pk=result["artifact"])
    assert row.engine == "tvm" and row.status == Artifact.Status.VERIFIED
    assert row.checks["conversion"]["options"]["tuned"] is True
    assert any(line.startswith("Untuned TVM") and "PyTorch eager" in line for line in report.lines)
