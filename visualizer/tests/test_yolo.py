"""Detection networks (the YOLOv7 .yaml family and YOLO11) as graphs: every zoo model with its ultralytics
parameter count, folded into backbone, head and ELAN blocks; a width edit carries by itself; a broken
concatenation is named; and the edited model dict is what the detection train stage trains."""

import copy
import re
from pathlib import Path

import pytest
import torch
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
from recommender.engine.costs import Costs
from training.engine.yolo.zoo import detection_model_names, model_dict, parameter_counts
from training.models import TrainingRun
from visualizer.graph.checks import engine_flags
from visualizer.graph.costs import graph_costs
from visualizer.graph.diff import diff
from visualizer.graph.yolo import YoloEditError, routed_model, yolo_apply, yolo_graph
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
    # The graph back to a model dict: every row and `from` reference as the .yaml wrote it (what ultralytics
    # builds and trains), and the same shapes and costs again.
    again = yolo_apply(graph, [], build)
    assert again["spec"] == model_dict(name, 3) and again["totals"] == graph["totals"]


def test_yolov7_folds_into_elan_blocks_and_a_broken_concat_is_named():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 320, name="yolov7-tiny")
    elans = [b for b in graph["blocks"] if b["type"] == "ELAN"]
    assert len(elans) == 4 and all(b["parent"] == "backbone" for b in elans)
    wider = yolo_apply(graph, [{"op": "set", "node": "2", "params": {"args": [48, 1, 1]}}], build)
    assert wider["errors"] == [] and wider["totals"]["params"] > graph["totals"]["params"]
    broken = yolo_apply(graph, [{"op": "set", "node": "8", "params": {"args": [2, 1, 0]}}], build)
    assert broken["errors"] == [{"node": "41", "message": "head.41 (Concat) joins maps of different sizes: 38×38 "
                                 "from head.39, 39×39 from head.40; they must match (a stride, pooling or upsampling "
                                 "changed one branch)"}]
    assert engine_flags(graph, "tensorrt") == []


def spec_rows(graph):
    return [row for section in ("backbone", "head") for row in graph["spec"][section]]


def test_inserting_a_row_reindexes_every_reference_after_it_and_removing_it_restores_the_model():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 128, name="yolov7-tiny")
    base = spec_rows(graph)
    inserted = yolo_apply(graph, [{"op": "insert", "after": "11", "layer": "Conv"}], build)
    assert inserted["errors"] == []
    edited = spec_rows(inserted)
    assert len(edited) == len(base) + 1
    assert edited[12] == [-1, 1, "Conv", [64, 3, 1]]  # reads row 11; a 3x3 conv as wide as its input
    assert edited[13] == [-1, 1, "Conv", [64, 3, 1]]  # was row 12: reads the new row (what read 11 reads it)
    assert edited[14][0] == [-1, 12, 10, 9]  # the ELAN's concat: absolute 11 -> the new row 12, rows before kept
    assert base[50][0] == 14 and edited[51][0] == 15  # a head row reading the backbone, re-indexed
    assert base[-1][0] == [74, 75, 76] and edited[-1][0] == [75, 76, 77]  # Detect's references
    assert [n["origin"] for n in inserted["nodes"][12:15]] == ["11", None, "12"]
    assert inserted["totals"]["params"] == graph["totals"]["params"] + 64 * 64 * 9 + 2 * 64
    changes = diff(graph, inserted)["lines"]
    assert changes[0] == "+ backbone.12 (Conv)" and not any(line.startswith("- ") for line in changes)

    back = yolo_apply(inserted, [{"op": "remove", "node": "12"}], build)
    assert spec_rows(back) == base and back["totals"] == graph["totals"]
    assert diff(graph, back)["lines"] == []


@pytest.mark.parametrize("edits", [
    [{"op": "insert", "after": "x", "layer": "Conv", "params": {"args": [16, 3, 1]}}],
    [{"op": "remove", "node": "0"}, {"op": "insert", "after": "37", "layer": "MaxPool2d",
                                      "params": {"args": [3, 1, 1]}}],
    [{"op": "insert", "after": "47", "layer": "Upsample"}, {"op": "insert", "after": "48", "layer": "MaxPool2d"}],
    [{"op": "remove", "node": "31"}, {"op": "rewire", "node": "33", "input": "30", "to": "29"}],
    [{"op": "replace", "node": "31", "layer": "Conv"}],
])
def test_an_edited_model_dict_builds_and_runs_in_ultralytics_with_the_graphs_shapes_and_parameters(edits):
    """The round trip: the graph's edited model dict is what ultralytics trains; its model has the parameters
    the graph counted and gives the shapes the graph inferred."""
    from ultralytics.nn.tasks import DetectionModel

    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 64, name="yolov7-tiny")
    edited = yolo_apply(graph, edits, build)
    assert edited["errors"] == []
    model = DetectionModel(copy.deepcopy(edited["spec"]), nc=3, verbose=False)
    assert sum(p.numel() for p in model.parameters()) == edited["totals"]["params"]
    model.train()
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, 64, 64))
    head = next(n for n in edited["nodes"] if n["op"] == "Detect")["shape"]
    assert {k: [list(t.shape) for t in v] if isinstance(v, list) else list(v.shape) for k, v in maps.items()} == head


def test_the_graph_costs_are_the_recommenders_profile_of_the_built_network():
    from recommender.profiling import profile_model

    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 128, name="yolov7-tiny")
    for edited in (graph, yolo_apply(graph, [{"op": "insert", "after": "20", "layer": "Conv"},
                                             {"op": "remove", "node": "3"}], build)):
        profile = profile_model(routed_model(edited["spec"], build), 128)
        mine = Costs(**graph_costs(edited))
        assert (mine.params, mine.flops, mine.activation_bytes, mine.peak_activation_bytes, mine.layers, mine.ops,
                mine.extra) == (profile.params, profile.flops, profile.activation_bytes,
                                profile.peak_activation_bytes, profile.layers, profile.ops, profile.extra)


def test_each_wrong_row_edit_is_named():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 128, name="yolov7-tiny")
    stride = yolo_apply(graph, [{"op": "insert", "after": "4", "layer": "Conv", "params": {"args": [32, 3, 2]}}],
                        build)  # one branch of the first ELAN halved
    assert stride["errors"][0]["node"] == "7"
    assert stride["errors"][0]["message"] == (
        "backbone.7 (Concat) joins maps of different sizes: 16×16 from backbone.6, 16×16 from backbone.5, 32×32 from "
        "backbone.3, 32×32 from backbone.2; they must match (a stride, pooling or upsampling changed one branch)")
    refused = yolo_apply(graph, [{"op": "set", "node": "2", "params": {"args": ["wide", 1, 1]}}], build)
    assert refused["errors"][0]["node"] == "2"
    assert refused["errors"][0]["message"].startswith('backbone.2 (Conv) cannot be built with ["wide", 1, 1]')
    for edit, message in [
        ({"op": "remove", "node": "6"}, "row 6 joins 4 inputs; rewire or remove its branches instead"),
        ({"op": "remove", "node": "77"}, "the detection head cannot be removed"),
        ({"op": "remove", "node": "99"}, "no row '99'"),
        ({"op": "insert", "after": "77", "layer": "Conv"}, "nothing can follow the detection head"),
        ({"op": "insert", "after": "3", "layer": "Transformer"}, "unknown layer 'Transformer' for a detector"),
        ({"op": "rewire", "node": "6", "input": "4", "to": "9"}, "row 9 comes after row 6: a network cannot loop"),
        ({"op": "rewire", "node": "6", "input": "7", "to": "1"}, "row 6 does not read '7'"),
        ({"op": "set", "node": "2", "params": {"repeats": 0}}, "repeats must be a whole number from 1 to 64"),
        ({"op": "fold", "node": "2"}, "op must be one of"),
    ]:
        with pytest.raises(YoloEditError, match=re.escape(message)):
            yolo_apply(graph, [edit], build)
    with pytest.raises(YoloEditError, match="only the first row can"):  # row 3 reads row 1 by its index
        yolo_apply(graph, [{"op": "remove", "node": "0"}, {"op": "remove", "node": "0"}], build)


def test_grouped_rows_stay_grouped_when_rows_go_in_or_out_before_or_after_the_group():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 128, name="yolov7-tiny")
    edits = [{"op": "insert", "after": "2", "layer": "Conv"}, {"op": "group", "nodes": ["31", "32"], "name": "sppcspc"},
             {"op": "remove", "node": "5"}, {"op": "insert", "after": "1", "layer": "Conv"}]
    grouped = yolo_apply(graph, edits, build)
    members = [n for n in grouped["nodes"] if n.get("block") == "sppcspc"]
    assert [n["origin"] for n in members] == ["30", "31"] and [n["id"] for n in members] == ["31", "32"]
    back = yolo_apply(graph, [*edits, {"op": "ungroup", "block": "sppcspc"}], build)  # edits replay from the base
    assert not any(n.get("block") == "sppcspc" for n in back["nodes"])
    with pytest.raises(YoloEditError, match="the nodes of a block must sit in the same enclosing block"):
        yolo_apply(graph, [{"op": "group", "nodes": ["28", "29"], "name": "g"}], build)


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
