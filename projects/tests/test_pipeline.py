"""The classification pipeline end to end, each stage run by the job machinery with its real runner."""

import json
import subprocess
import sys
import zipfile

import pytest

from deployment.models import Artifact
from projects.jobs.models import JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue
from projects.jobs.storage import absolute
from projects.tests import factories
from projects.tests.stage_runs import run_stage
from training.models import TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


def test_recommend_train_convert_benchmark_package(tmp_path, settings):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=3)

    recommend = run_stage(project, "recommend")
    assert recommend.result["paper"]["reason"] == "Odroid_N2 is On-device tier → ResNet-34 (TANGO paper, Table 1)."
    top = recommend.result["ranking"]["top"]
    # The recommendation is the ranking's top, or a smaller fitting one that this small dataset can train.
    assert recommend.result.get("ranked_top", recommend.result["model"]) == top["key"]
    assert top["latency_ms"] <= project.latency_budget_ms
    assert recommend.result["chosen"] == "resnet18", "the model picked on the project is what trains"

    train = run_stage(project, "train")
    run = TrainingRun.objects.get(job=train)
    assert len(run.history) == 3 and run.history[-1]["top1"] > 1 / 3, "better than chance on three classes"
    assert run.weights_sha256 and absolute(run.weights_path).is_file()
    assert run.dataset_sha256 == project.dataset.sha256
    assert len(train.result["confusion_matrix"]) == 3 and set(train.result["per_class_accuracy"]) == set(
        project.dataset.class_names)
    log = list(train.log_lines.values_list("text", flat=True))
    assert any(line.startswith("epoch 3/3") for line in log)

    convert = run_stage(project, "convert")
    onnx = Artifact.objects.get(job=convert, kind="onnx")
    assert onnx.status == "verified"
    assert onnx.checks["parity"]["max_abs_diff"] < 1e-3 and onnx.checks["parity"]["top1_agreement"] == 1.0

    benchmark = run_stage(project, "benchmark")
    rows = {row["kind"]: row for row in benchmark.result["rows"]}
    assert set(rows) == {"PyTorch weights", "ONNX model"}
    assert rows["ONNX model"]["top1"] == rows["PyTorch weights"]["top1"]
    assert all(row["latency_p50_ms"] > 0 for row in rows.values())

    package = run_stage(project, "package")
    bundle = Artifact.objects.get(job=package, kind="bundle")
    assert bundle.status == "verified" and bundle.checks["passed"] and "smoke_test.py" in bundle.checks["ran"]

    # A user unpacks the bundle and runs it: its predictions equal the portal's.
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        archive.extractall(tmp_path)
        assert {"model.onnx", "labels.txt", "preprocess.json", "infer.py", "requirements.txt", "README.md",
                "SHA256SUMS"} <= set(archive.namelist())
    val = project.dataset.root / "val"
    done = subprocess.run([sys.executable, str(tmp_path / "infer.py"), *sorted(map(str, val.glob("*/*.png"))),
                           "--format", "json", "--top-k", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from deployment.engine.bundle_infer import load_bundle, predict

    session, config, labels = load_bundle(tmp_path)
    paths = sorted(val.glob("*/*.png"))
    portal = predict(session, paths, input_size=config["input_size"], labels=labels, top_k=1)
    assert [r["top"][0]["label"] for r in json.loads(done.stdout)] == [r["top"][0]["label"] for r in portal]


def test_a_detection_project_with_a_classifier_picked_fails_with_a_clear_message():
    # Detection trains (training/tests/test_detection_stage.py); a classifier picked for it is refused by name.
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    project.task = "detection"
    project.dataset.task = "detection"
    project.dataset.save()
    project.save()
    run_stage(project, "recommend")
    job = job_enqueue(project=project, stage_key="train")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "'resnet18' is not a detection model" in job.error
    assert "yolov7-tiny" in job.error and "yolo11n" in job.error
