"""The detection demo: objects cut from scikit-image's photographs (nothing downloaded), a project for a small
on-device target, YOLO11n at the images' own 128 px — trained on a 2-core CPU in minutes (bench/detection_demo.py)."""

import tempfile
from pathlib import Path

from django.db import transaction

from projects.access import editable_teams_for
from projects.datasets.detection_demo import DEMO_RECIPE, make_detection_demo_zip
from projects.demo import demo_device
from projects.models import Dataset, Project, RunMode, Task
from projects.services import dataset_create, project_create, team_create

DEMO_DATASET = "Objects on backgrounds (detection demo)"
DEMO_DEVICE = "Jetson_Nano"  # Table 1 recommends YOLOv7-tiny there; the demo trains the lighter YOLO11n
DEMO_TRAINING = {"epochs": DEMO_RECIPE["epochs"], "batch": DEMO_RECIPE["batch"], "patience": 0,
                 "overrides": DEMO_RECIPE["overrides"]}


def detection_demo_dataset(*, team, user) -> Dataset:
    existing = Dataset.objects.filter(team=team, name=DEMO_DATASET).first()
    if existing:
        return existing
    with tempfile.TemporaryDirectory() as tmp:
        archive = make_detection_demo_zip(Path(tmp) / "detection-demo.zip", train=DEMO_RECIPE["train"],
                                          val=DEMO_RECIPE["val"], size=DEMO_RECIPE["image_size"])
        with archive.open("rb") as upload:
            return dataset_create(team=team, name=DEMO_DATASET, task=Task.DETECTION, upload=upload, user=user)


def detection_demo_create(*, user) -> Project:
    device = demo_device(DEMO_DEVICE)  # before anything is created
    team = editable_teams_for(user).first() or team_create(name=f"{user.username}'s team", owner=user)
    with transaction.atomic():
        dataset = detection_demo_dataset(team=team, user=user)
    number = Project.objects.filter(team=team, name__startswith="Detection demo").count() + 1
    return project_create(
        team=team, user=user, name=f"Detection demo {number}", task=Task.DETECTION, dataset=dataset,
        device=device, engine="onnxruntime", precision="fp32", input_size=DEMO_RECIPE["input_size"],
        latency_budget_ms=None, run_mode=RunMode.AUTO,
        options={"model": DEMO_RECIPE["model"], "train": DEMO_TRAINING},
        description="Objects cut from scikit-image's photographs onto varied backgrounds, detected by YOLO11n "
                    "for a Jetson Nano and packaged for ONNX Runtime.",
    )
