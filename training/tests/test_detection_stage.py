"""Detection through the portal: the train, convert, benchmark and package stages run by the job machinery with
their real runners on a tiny generated dataset, and the pages' result fragments they produce."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string

from deployment.models import Artifact
from projects.datasets.detection_demo import write_detection_demo
from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.storage import absolute
from projects.models import Dataset
from projects.tests import factories
from projects.tests.stage_runs import run_stage
from training.models import TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


def detection_project(team):
    relative = f"datasets/test/detection-{team.pk}"
    write_detection_demo(Path(settings.MEDIA_ROOT) / relative, train=8, val=4, size=64, classes=["cat"], seed=3)
    dataset = Dataset.objects.create(team=team, name="cats", task="detection", path=relative, class_names=["cat"],
                                     num_images=12, sha256="2" * 64)
    train = {"epochs": 1, "batch": 4, "patience": 0, "quality_gate": False,  # one epoch: mechanics, not mAP
             "overrides": {"nbs": 4, "warmup_epochs": 0, "mosaic": 0.0, "optimizer": "SGD", "lr0": 0.02}}
    return factories.project(team, name="cats", task="detection", dataset=dataset, device=factories.device(),
                             input_size=64, options={"model": "yolo11n", "train": train})


def test_detection_project_trains_converts_benchmarks_and_packages():
    team = factories.team_with("Vision", alice="owner")
    project = detection_project(team)
    run_stage(project, "recommend")

    train = run_stage(project, "train")
    run = TrainingRun.objects.get(job=train)
    assert run.model_name == "yolo11n" and run.architecture["task"] == "detection"
    assert [r["epoch"] for r in run.history] == [1] and absolute(run.weights_path).is_file()
    result = train.result
    assert result["task"] == "detection" and result["per_class"][0]["name"] == "cat"
    assert result["pr_curve"]["recall"] and result["predictions"][0]["thumbnail"].startswith("data:image/jpeg")
    log = list(train.log_lines.values_list("text", flat=True))
    assert any(line.startswith("epoch 1/1: box ") for line in log)
    assert any("Starting training for 1 epochs" in line for line in log)  # ultralytics' own console
    page = render_to_string("training/results/_train.html", {"result": result})
    assert "AP50" in page and "Precision–recall" in page and "<image href=\"data:image/jpeg" in page

    convert = run_stage(project, "convert")
    onnx = Artifact.objects.get(job=convert, kind="onnx")
    assert onnx.status == "verified" and onnx.checks["parity"]["box_agreement"] == 1.0
    assert "boxes agree after NMS" in render_to_string("deployment/results/_convert.html", {"result": convert.result})

    benchmark = run_stage(project, "benchmark")
    rows = {row["kind"]: row for row in benchmark.result["rows"]}
    assert rows["ONNX model"]["map50"] == pytest.approx(onnx.checks["parity"]["map50_onnx"])
    assert all(row["latency_p50_ms"] > 0 for row in rows.values())
    assert "mAP50" in render_to_string("deployment/results/_benchmark.html", {"result": benchmark.result})

    package = run_stage(project, "package")
    bundle = Artifact.objects.get(job=package, kind="bundle")
    assert bundle.status == "verified" and bundle.checks["passed"] and "smoke_test.py" in bundle.checks["ran"]
    assert "infer.py" in bundle.checks["files"]


def test_a_detection_search_tunes_ultralytics_hyperparameters_and_its_best_trial_trains(client):
    team = factories.team_with("Vision", alice="owner")
    project = detection_project(team)
    project.options = {**project.options, "hpo": {"trials": 2, "epochs": 1}}
    project.save()
    run_stage(project, "recommend")

    hpo = run_stage(project, "hpo")
    summary = hpo.result
    assert len([t for t in summary["trials"] if t["state"] == "complete"]) == 2
    assert set(summary["best"]["params"]) == {"lr0", "momentum", "weight_decay", "box", "cls", "hsv_v", "scale",
                                              "mosaic"}

    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.post(f"/api/searches/{hpo.pk}/adopt/").status_code == 202
    project.refresh_from_db()
    overrides = project.options["train"]["overrides"]
    assert overrides["lr0"] == summary["best"]["params"]["lr0"] and overrides["nbs"] == 4  # the rest kept
    train = Job.objects.filter(project=project, stage="train").get()
    job_execute(job_id=train.pk, attempt=train.attempt)
    train.refresh_from_db()
    assert train.status == JobStatus.SUCCEEDED, train.error
    assert TrainingRun.objects.get(job=train).hyperparameters["overrides"] == overrides
