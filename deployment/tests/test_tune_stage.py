"""The optional tune stage: a real (tiny-budget) MetaSchedule search on the converted model, reported against the
untuned TVM build and the model's baseline (PyTorch eager, or an imported model in ONNX Runtime), stored as a
verified TVM artifact."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from deployment import services, tuning
from deployment.engine.converters.tvm import TvmConverter
from deployment.engine.onnx_export import export_onnx
from deployment.models import Artifact
from projects.jobs.models import JobStatus
from projects.jobs.registry import stage_get
from training.engine.zoo import build_model

from .test_stages import Report, converted, job_for, project  # noqa: F401 - fixtures
from .training_runs import INPUT_SIZE, trained_run

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


def test_an_imported_models_tune_card_names_its_baseline_by_what_it_runs(project, tmp_path):  # noqa: F811
    """An imported ONNX model has no PyTorch weights: its baseline runs in ONNX Runtime, and the tune card and log
    name it as the live Table 2 does. Both said "PyTorch eager"."""
    project.options = {**project.options, "tvm_tune": {"trials": 2, "seconds": 20}}
    project.save()
    model = build_model("vgg_tiny", num_classes=len(project.dataset.class_names), input_size=INPUT_SIZE).eval()
    theirs = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path / "theirs.onnx")
    browser = Client()
    browser.force_login(project.team.members.get(username="alice"))
    assert browser.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": SimpleUploadedFile("theirs.onnx", theirs.read_bytes()),
        "labels": "\n".join(project.dataset.class_names), "input_size": INPUT_SIZE,
        "mean": "0.485, 0.456, 0.406", "std": "0.229, 0.224, 0.225"}).status_code == 302
    convert = job_for(project, "convert")
    convert.result, convert.status = services.convert_stage(convert, Report()), JobStatus.SUCCEEDED
    convert.save()

    report, job = Report(), job_for(project, "tvm_tune")
    job.result, job.status = tuning.tune_stage(job, report), JobStatus.SUCCEEDED
    job.save()
    baseline = "Imported ONNX model (ONNX Runtime)"
    assert (job.result["baseline"], job.result["reference_name"]) == (baseline, "the imported model")
    assert not any("PyTorch" in line for line in report.lines), report.lines
    assert any(line.startswith("Untuned TVM") and f"; {baseline} " in line and "vs the imported model" in line
               for line in report.lines), report.lines
    page = browser.get(reverse("projects:detail", args=[project.pk])).content.decode()
    card = page[page.index('data-testid="tune-result"'):]
    card = card[:card.index("</div>")]
    assert f"<tr><td>{baseline}</td>" in card and f"× vs {baseline}, " in card
    assert "against the imported model's" in card and "PyTorch" not in card
