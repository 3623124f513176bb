"""Detection networks (the YOLOv7 .yaml family and YOLO11) as graphs: every zoo model with its ultralytics
parameter count, folded into backbone, head and ELAN blocks; a width edit carries by itself; a broken
concatenation is named; and the edited model dict is what the detection train stage trains."""

import copy
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from projects.datasets.detection_demo import write_detection_demo
from projects.jobs import services as job_services
from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue
from projects.jobs.storage import job_dir
from projects.models import Dataset
from projects.tests import factories
from training.engine.yolo.zoo import detection_model_names, model_dict, parameter_counts
from training.models import TrainingRun
from visualizer.graph.checks import engine_flags
from visualizer.graph.yolo import YoloEditError, yolo_apply, yolo_graph
from visualizer.services import architecture_save


def build(spec):
    from ultralytics.nn.tasks import parse_model

    return parse_model(copy.deepcopy(spec), ch=3, verbose=False)[0]


@pytest.mark.parametrize("name", detection_model_names())
def test_every_detection_yaml_is_a_graph_with_its_parameter_count(name):
    size = 128  # a multiple of the P6 models' stride 64
    graph = yolo_graph(model_dict(name, 3), build, size, name=name)
    assert graph["errors"] == []
    assert graph["totals"]["params"] == parameter_counts(name, nc=3, input_size=size)["total"]
    assert {b["id"] for b in graph["blocks"] if b["parent"] is None} == {"backbone", "head"}
    detect = next(n for n in graph["nodes"] if n["op"] == "Detect")
    assert len(detect["inputs"]) == (4 if name.endswith(("6", "6e")) else 3)  # skip edges from the neck


def test_yolov7_folds_into_elan_blocks_and_a_broken_concat_is_named():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 320, name="yolov7-tiny")
    elans = [b for b in graph["blocks"] if b["type"] == "ELAN"]
    assert len(elans) == 4 and all(b["parent"] == "backbone" for b in elans)
    wider = yolo_apply(graph, [{"op": "set", "node": "2", "params": {"args": [48, 1, 1]}}], build)
    assert wider["errors"] == [] and wider["totals"]["params"] > graph["totals"]["params"]
    broken = yolo_apply(graph, [{"op": "set", "node": "8", "params": {"args": [2, 1, 0]}}], build)
    assert broken["errors"][0]["node"] == "41"
    assert broken["errors"][0]["message"].startswith("head.41 (Concat) cannot take [[1, 128, 38, 38], "
                                                     "[1, 128, 39, 39]]")
    with pytest.raises(YoloEditError, match="detection networks take set"):
        yolo_apply(graph, [{"op": "remove", "node": "2"}], build)
    assert engine_flags(graph, "tensorrt") == []


@pytest.mark.django_db(transaction=True)
def test_the_detection_train_stage_trains_the_edited_model_dict(monkeypatch):
    monkeypatch.setattr(job_services, "_dispatch", lambda *args: None)
    team = factories.team_with("Vision", alice="owner")
    relative = f"datasets/test/detection-{team.pk}"
    write_detection_demo(Path(settings.MEDIA_ROOT) / relative, train=8, val=4, size=64, classes=["cat"], seed=3)
    dataset = Dataset.objects.create(team=team, name="cats", task="detection", path=relative, class_names=["cat"],
                                     num_images=12, sha256="2" * 64)
    train = {"epochs": 1, "batch": 4, "patience": 0, "quality_gate": False,  # one epoch: mechanics, not mAP
             "overrides": {"nbs": 4, "warmup_epochs": 0, "mosaic": 0.0, "optimizer": "SGD", "lr0": 0.02}}
    project = factories.project(team, name="cats", task="detection", dataset=dataset, device=factories.device(),
                                input_size=64, options={"model": "yolov7-tiny", "train": train})
    Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, queue="cpu",
                                    result={"model": "yolov7-tiny"})
    architecture = architecture_save(project=project, user=None, base_model="yolov7-tiny",
                                     edits=[{"op": "set", "node": "2", "params": {"args": [48, 1, 1]}}])
    assert architecture.summary["changes"] == ["~ backbone.2: args [32, 1, 1] → [48, 1, 1]"]

    job = job_enqueue(project=project, stage_key="train")
    job_execute(job_id=job.pk, attempt=job.attempt)
    job.refresh_from_db()
    log = list(job.log_lines.values_list("text", flat=True))
    assert job.status == JobStatus.SUCCEEDED, job.error + "\n".join(log[-20:])
    assert any("yolov7-tiny, edited (network version 1)" in line for line in log)
    run = TrainingRun.objects.get(job=job)
    assert run.architecture["network"]["version"] == 1
    written = yaml.safe_load((job_dir(job, keep=True) / "network.yaml").read_text())
    assert written["backbone"][2][3] == [48, 1, 1]
