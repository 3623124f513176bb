"""The paper's Table 1, cell by cell, read through the API from the seeded catalog."""

import pytest

from recommender.models import Device

pytestmark = pytest.mark.django_db

# Written out from ../shared/PAPER.md's Table 1, independently of the migration and engine.table1, so a typo in
# either shows up.
PAPER_TABLE1 = [
    # tier, device, object detection, image classification
    ("Cloud", "Cloud", "YOLOv7-E6E", "ResNet-203"),
    ("K8S", "K8S_PC", "YOLOv7-W6", "ResNet-152"),
    ("K8S", "K8S_Jetson_Nano", "YOLOv7-tiny", "ResNet-34"),
    ("PC", "PC_Server", "YOLOv7-E6", "ResNet-152"),
    ("PC", "PC", "YOLOv7-W6", "ResNet-152"),
    ("On-device", "Jetson_AGX_Orin", "YOLOv7-W6", "ResNet-101"),
    ("On-device", "Jetson_AGX_Xavier", "YOLOv7-X", "ResNet-50"),
    ("On-device", "Jetson_Nano", "YOLOv7-tiny", "ResNet-34"),
    ("On-device", "Galaxy_S22", "YOLOv7-tiny", "ResNet-34"),
    ("On-device", "Odroid_N2", "YOLOv7-tiny", "ResNet-34"),
]


def devices_by_name(client) -> dict:
    response = client.get("/api/devices/", {"page_size": 100})
    assert response.status_code == 200
    body = response.json()
    return {d["name"]: d for d in body.get("results", body)}


def test_every_cell_of_table1_through_the_api(bob_client):
    devices = devices_by_name(bob_client)
    seen = []
    for tier, name, detection, classification in PAPER_TABLE1:
        device = devices[name]
        rules = device["paper_rules"]
        assert (device["paper_detection_model"], device["paper_classification_model"]) == (detection, classification)
        for task, label in (("detection", detection), ("classification", classification)):
            assert rules[task]["model_label"] == label
            assert rules[task]["rule"] == "table1"
            assert rules[task]["reason"] == f"{name} is {tier} tier → {label} (TANGO paper, Table 1)."
        seen.append((tier, name, rules["detection"]["model_label"], rules["classification"]["model_label"]))
    assert seen == PAPER_TABLE1
    paper_devices = [n for n, d in devices.items() if d["paper_detection_model"] or d["paper_classification_model"]]
    assert sorted(paper_devices) == sorted(row[1] for row in PAPER_TABLE1)
    labels = {row[3] for row in PAPER_TABLE1}
    assert len(labels) == 5, "five classification models in all"


def test_renaming_a_device_keeps_its_papers_models(alice_client):
    orin = Device.objects.get(name="Jetson_AGX_Orin")
    response = alice_client.patch(f"/api/devices/{orin.pk}/", {"name": "Lab Orin #2"}, content_type="application/json")
    assert response.status_code == 200, response.content
    rules = response.json()["paper_rules"]
    assert (rules["detection"]["model_label"], rules["classification"]["model_label"]) == ("YOLOv7-W6", "ResNet-101")
    assert rules["classification"]["rule"] == "table1"
    assert rules["classification"]["reason"].startswith("Lab Orin #2 is On-device tier → ResNet-101")


def test_a_device_outside_the_paper_borrows_from_the_paper_device_nearest_in_compute(bob_client):
    rules = devices_by_name(bob_client)["Rock_5B"]["paper_rules"]  # 512 GFLOPS: nearest is the Jetson Nano's 236
    assert rules["classification"]["rule"] == "nearest"
    assert rules["classification"]["model_label"] == "ResNet-34"
    assert "not in the paper's Table 1" in rules["classification"]["reason"]
    assert "Jetson_Nano" in rules["classification"]["reason"] or "K8S_Jetson_Nano" in rules["classification"]["reason"]


def test_an_admin_can_set_a_paper_model_and_only_a_paper_model(alice_client):
    rock = Device.objects.get(name="Rock_5B")
    ok = alice_client.patch(f"/api/devices/{rock.pk}/", {"paper_classification_model": "ResNet-50"},
                            content_type="application/json")
    assert ok.status_code == 200 and ok.json()["paper_rules"]["classification"]["rule"] == "table1"
    bad = alice_client.patch(f"/api/devices/{rock.pk}/", {"paper_classification_model": "ResNet-9000"},
                             content_type="application/json")
    assert bad.status_code == 400
