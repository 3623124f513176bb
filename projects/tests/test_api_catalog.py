"""The device catalog and the engine registry over the API."""

import pytest

from projects.tests import factories


@pytest.fixture
def catalog(world):
    factories.device("Raspberry_Pi_4", tier="on_device", accelerator_kind="none", cpu_name="Cortex-A72",
                     engines=["onnxruntime", "tflite"])
    factories.device("Xeon_Server", tier="cloud", accelerator_kind="none", engines=["onnxruntime", "openvino"])
    return world


def device_names(client, **query):
    return sorted(d["name"] for d in client.get("/api/devices/", query).data["results"])


def test_devices_filter_by_tier_accelerator_engine_and_search(catalog, client_for):
    carol = client_for("viewer")
    assert device_names(carol, tier="cloud") == ["Xeon_Server"]
    assert device_names(carol, accelerator_kind="nvidia_gpu") == ["Jetson_Nano", "Spare_Board"]
    assert device_names(carol, engine="openvino") == ["Xeon_Server"]
    assert device_names(carol, engine="onnxruntime", tier="on_device") == [
        "Jetson_Nano", "Raspberry_Pi_4", "Spare_Board"]
    assert device_names(carol, search="cortex") == ["Raspberry_Pi_4"]


def test_an_unknown_engine_filter_is_a_400(catalog, client_for):
    assert client_for("viewer").get("/api/devices/", {"engine": "caffe"}).status_code == 400


def test_staff_device_writes_are_checked_by_the_models_rules(world, client_for):
    response = client_for("staff").patch(f"/api/devices/{world.device.pk}/", {"accelerator_kind": "none"},
                                         format="json")
    assert response.status_code == 400
    assert response.data["engines"] == [
        "TensorRT needs an NVIDIA GPU; the engine is built on the device; this device's accelerator (none) cannot "
        "run it."]


def test_a_device_used_by_projects_cannot_be_deleted(world, client_for):
    response = client_for("staff").delete(f"/api/devices/{world.device.pk}/")
    assert response.status_code == 409
    assert response.data["detail"].startswith("Still in use by: ")


def test_engines_list_what_each_needs(world, client_for):
    engines = {e["key"]: e for e in client_for("viewer").get("/api/engines/").data}
    assert engines["rknn"] == {"key": "rknn", "label": "RKNN", "accelerators": ["rockchip_npu"],
                               "precisions": ["fp16", "int8"], "why": "needs a Rockchip NPU"}
    assert client_for("viewer").get("/api/engines/tensorrt/").data["label"] == "TensorRT"
    assert client_for("viewer").get("/api/engines/caffe/").status_code == 404
