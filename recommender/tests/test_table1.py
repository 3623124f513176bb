"""The paper's Table 1, cell by cell, through the seeded catalog: the device's stored tier feeds the rule."""

import pytest

from recommender.models import Device
from recommender.rules import TABLE1, recommend

pytestmark = pytest.mark.django_db

# Written out from the TANGO paper's Table 1, independently of rules.TABLE1, so a typo in either shows up.
PAPER_TABLE1 = {
    # device: (tier label, detection, classification)
    "Cloud": ("Cloud", "YOLOv7-D6", "ResNet-152"),
    "K8S_PC": ("K8S", "YOLOv7-E6", "ResNet-101"),
    "K8S_Jetson_Nano": ("K8S", "YOLOv7-E6", "ResNet-101"),
    "PC_Server": ("PC", "YOLOv7-W6", "ResNet-50"),
    "PC": ("PC", "YOLOv7-W6", "ResNet-50"),
    "Jetson_AGX_Orin": ("On-device", "YOLOv7-X", "ResNet-34"),
    "Jetson_AGX_Xavier": ("On-device", "YOLOv7-X", "ResNet-34"),
    "Jetson_Nano": ("On-device", "YOLOv7-X", "ResNet-34"),
    "Galaxy_S22": ("On-device", "YOLOv7 supernet (searched per device)", "ResNet-18"),
    "Odroid_N2": ("On-device", "YOLOv7-tiny", "ResNet-18"),
}
CELLS = [
    (device, task, labels[1 if task == "detection" else 2])
    for device, labels in PAPER_TABLE1.items()
    for task in ("detection", "classification")
]


def recommend_for(name: str, task: str):
    device = Device.objects.get(name=name)
    return recommend(device_name=device.name, tier=device.tier, task=task)


def test_rules_table_covers_exactly_the_papers_devices():
    assert set(TABLE1) == set(PAPER_TABLE1)


@pytest.mark.parametrize(("device", "task", "label"), CELLS, ids=[f"{d}-{t}" for d, t, _ in CELLS])
def test_table1_cell(device, task, label):
    rec = recommend_for(device, task)
    tier_label = PAPER_TABLE1[device][0]
    assert rec.model_label == label
    assert rec.rule == "table1"
    assert rec.family == ("yolov7" if task == "detection" else "resnet")
    assert rec.reason == f"{device} is {tier_label} tier → {label} (TANGO paper, Table 1)."


def test_reason_reads_as_the_issue_quotes_it():
    assert recommend_for("Jetson_Nano", "classification").reason.startswith(
        "Jetson_Nano is On-device tier → ResNet-34"
    )


@pytest.mark.parametrize("board", ["Odroid_M1", "Rock_5B"])
@pytest.mark.parametrize(("task", "model"), [("detection", "yolov7-tiny"), ("classification", "resnet18")])
def test_rockchip_boards_fall_back_on_the_on_device_tier_row(board, task, model):
    rec = recommend_for(board, task)
    assert (rec.model, rec.rule) == (model, "tier")
    assert rec.reason.startswith(f"{board} is not in the paper's Table 1; it is On-device tier → ")


@pytest.mark.parametrize(("task", "label"), [("detection", "YOLOv7-W6"), ("classification", "ResNet-50")])
def test_this_server_falls_back_on_the_pc_tier_row(task, label):
    rec = recommend_for("This_Server", task)
    assert (rec.model_label, rec.rule) == (label, "tier")
    assert "This_Server is not in the paper's Table 1; it is PC tier → " + label in rec.reason
