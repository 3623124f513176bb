"""The device catalog and the engine registry over the API."""

import pytest

from projects.tests import factories
from recommender.models import Device


@pytest.fixture
def catalog(world):
    factories.device("Raspberry_Pi_4", tier="on_device", accelerator_kind="none", cpu_name="Cortex-A72",
                     engines=["onnxruntime", "tflite"])
    factories.device("Xeon_Server", tier="cloud", accelerator_kind="none", engines=["onnxruntime", "openvino"])
    return world


def device_names(client, **query):
    return sorted(d["name"] for d in client.get("/api/devices/", query).data["results"])


def catalog_names(keep):
    """What a filter should return, worked out in Python over the whole catalog (seeded rows included)."""
    return sorted(d.name for d in Device.objects.all() if keep(d))


def test_devices_filter_by_tier_accelerator_engine_and_search(catalog, client_for):
    carol = client_for("viewer")
    cases = [
        ({"tier": "cloud"}, lambda d: d.tier == "cloud"),
        ({"accelerator_kind": "nvidia_gpu"}, lambda d: d.accelerator_kind == "nvidia_gpu"),
        ({"engine": "openvino"}, lambda d: "openvino" in d.engines),
        ({"engine": "onnxruntime", "tier": "on_device"},
         lambda d: "onnxruntime" in d.engines and d.tier == "on_device"),
        ({"search": "cortex"},
         lambda d: "cortex" in f"{d.name} {d.vendor} {d.cpu_name} {d.accelerator_name} {d.os}".lower()),
    ]
    assert Device.objects.count() < 50, "one page of results is compared"
    for query, keep in cases:
        assert device_names(carol, **query) == catalog_names(keep), query
    assert "Xeon_Server" in device_names(carol, engine="openvino")
    assert "Raspberry_Pi_4" in device_names(carol, search="cortex")


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


def test_a_devices_choices_are_what_the_settings_page_offers_and_saving_refuses(world, client_for):
    """The settings page redraws the engine and precision lists as the engine changes; the API's twin answers
    the same choices with the same reasons, and saving a refused one says that reason."""
    from django.test import Client

    alice, project = client_for("owner"), world.project
    answer = alice.get(f"/api/devices/{world.device.pk}/choices/", {"task": "classification"})
    assert answer.status_code == 200 and answer.data["task"] == "classification"
    engines = {e["value"]: e for e in answer.data["engines"]}
    assert list(engines) == world.device.engines
    pytorch = {p["value"]: p["problem"] for p in engines["pytorch"]["precisions"]}
    assert pytorch["fp32"] is None and pytorch["fp16"] == "PyTorch fp16 builds are not in this version."

    page = Client()
    page.force_login(world.users["alice"])
    form = page.post(f"/projects/{project.pk}/edit/", {"action": "refresh", "device": world.device.pk,
                                                       "engine": "pytorch"}, headers={"HX-Request": "true"})
    refused = [problem for problem in pytorch.values() if problem]
    assert all(f'title="{problem}"' in form.content.decode() for problem in refused)

    saved = alice.patch(f"/api/projects/{project.pk}/", {"engine": "pytorch", "precision": "fp16"}, format="json")
    assert saved.status_code == 400 and pytorch["fp16"] in str(saved.data)
    assert alice.get(f"/api/devices/{world.device.pk}/choices/", {"task": "speech"}).status_code == 400
