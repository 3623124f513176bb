"""The catalog's admin: Alice (staff) browses, filters, searches and edits; Bob (not staff) is kept out."""

from html import escape

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from recommender.models import Device
from tango_common.engines import ENGINES, engine_problem

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:recommender_device_changelist")


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {device.name for device in response.context["cl"].result_list}


def change_form_data(device: Device, **changes) -> dict:
    """What the admin change form posts for this device, with changes applied."""
    values = model_to_dict(device, exclude=["id"]) | changes
    data = {}
    for key, value in values.items():
        if isinstance(value, bool):
            if value:
                data[key] = "on"  # an unchecked checkbox is simply absent
        else:
            data[key] = "" if value is None else value
    return data | {"_save": "Save"}


def test_staff_sees_the_catalog_changelist(alice_client):
    response = alice_client.get(CHANGELIST)
    assert listed(response) == set(Device.objects.values_list("name", flat=True))
    assert b"Jetson_Nano" in response.content and b"TensorRT" in response.content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tier=on_device", {"Jetson_AGX_Orin", "Jetson_AGX_Xavier", "Jetson_Nano", "Galaxy_S22", "Odroid_N2",
                            "Odroid_M1", "Rock_5B"}),
        ("tier=k8s", {"K8S_PC", "K8S_Jetson_Nano"}),
        ("accelerator_kind=rockchip_npu", {"Odroid_M1", "Rock_5B"}),
        ("accelerator_kind=mali_gpu", {"Odroid_N2"}),
        ("engine=rknn", {"Odroid_M1", "Rock_5B"}),
    ],
)
def test_each_filter_narrows_the_changelist(alice_client, query, expected):
    assert listed(alice_client.get(f"{CHANGELIST}?{query}")) == expected


@pytest.mark.parametrize("engine", list(ENGINES))
def test_engine_filter_returns_exactly_the_devices_that_run_it(alice_client, engine):
    runs_it = {d.name for d in Device.objects.all() if engine in d.engines}
    assert listed(alice_client.get(f"{CHANGELIST}?engine={engine}")) == runs_it


def test_engine_filter_combines_with_tier(alice_client):
    assert listed(alice_client.get(f"{CHANGELIST}?engine=tensorrt&tier=k8s")) == {"K8S_PC", "K8S_Jetson_Nano"}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("Hardkernel", {"Odroid_N2", "Odroid_M1"}),  # vendor
        ("Maxwell", {"Jetson_Nano", "K8S_Jetson_Nano"}),  # accelerator name
        ("Cortex-A76", {"Rock_5B"}),  # CPU
        ("GA102 whitepaper", {"K8S_PC", "PC_Server"}),  # notes
        ("galaxy", {"Galaxy_S22"}),  # name, case-insensitive
    ],
)
def test_search(alice_client, term, expected):
    assert listed(alice_client.get(CHANGELIST, {"q": term})) == expected


def test_change_form_shows_engines_as_checkboxes(alice_client):
    device = Device.objects.get(name="Odroid_M1")
    response = alice_client.get(reverse("admin:recommender_device_change", args=[device.pk]))
    assert response.status_code == 200
    assert b'type="checkbox" name="engines" value="rknn"' in response.content


def test_a_valid_edit_saves(alice_client):
    device = Device.objects.get(name="Odroid_N2")
    url = reverse("admin:recommender_device_change", args=[device.pk])
    response = alice_client.post(url, change_form_data(device, engines=["tvm", "tflite"], memory_mb=2048))
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.engines, device.memory_mb) == (["tvm", "tflite"], 2048)


def test_adding_tensorrt_to_a_device_without_an_nvidia_gpu_is_refused(alice_client):
    device = Device.objects.get(name="Odroid_N2")
    before = list(device.engines)
    url = reverse("admin:recommender_device_change", args=[device.pk])

    response = alice_client.post(url, change_form_data(device, engines=[*before, "tensorrt"]))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"engines"}
    message = engine_problem("tensorrt", device.accelerator_kind)
    assert escape(message) in response.content.decode()
    device.refresh_from_db()
    assert device.engines == before


def test_a_device_with_no_engine_is_refused(alice_client):
    device = Device.objects.get(name="Odroid_N2")
    url = reverse("admin:recommender_device_change", args=[device.pk])
    response = alice_client.post(url, change_form_data(device, engines=[]))
    assert "List at least one engine the device runs." in response.content.decode()


def test_non_staff_user_is_sent_to_the_admin_login(bob_client):
    response = bob_client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_deleting_a_record_in_the_admin_goes_through_the_service_and_is_audited(alice_client, alice):
    """The admin's delete and the API's (`DELETE /api/devices/{id}/records/{id}/`) are one service."""
    from projects.models import AuditEvent
    from projects.tests import factories
    from recommender.models import BenchmarkRecord

    team = factories.team_with("Vision", carol="owner")
    record = factories.benchmark_record(Device.objects.get(name="Jetson_Nano"), team=team)
    url = reverse("admin:recommender_benchmarkrecord_delete", args=[record.pk])
    assert alice_client.post(url, {"post": "yes"}).status_code == 302
    assert not BenchmarkRecord.objects.filter(pk=record.pk).exists()
    event = AuditEvent.objects.get(target_type="benchmarkrecord", target_id=str(record.pk))
    assert (event.action, event.actor, event.team) == ("deleted", alice, team)


def test_the_api_deletes_a_teams_record_for_staff_of_that_team_only():
    """Staff curate through the API the records GET .../records/ shows them: the shared ones and their teams'.
    Another team's record does not exist for them (404, kept); the admin, behind its model rights, sees all."""
    from rest_framework.test import APIClient

    from projects.models import Membership
    from projects.tests import factories
    from recommender.models import BenchmarkRecord

    device = Device.objects.get(name="Jetson_Nano")
    record = factories.benchmark_record(device, team=factories.team_with("Vision", carol="owner"))
    erin = factories.user("erin", is_staff=True)
    api = APIClient()
    api.force_authenticate(erin)
    url = f"/api/devices/{device.pk}/records/{record.pk}/"
    assert record.pk not in [r["id"] for r in api.get(f"/api/devices/{device.pk}/records/").data["records"]]
    assert api.delete(url).status_code == 404 and BenchmarkRecord.objects.filter(pk=record.pk).exists()
    Membership.objects.create(team=record.team, user=erin, role="viewer")  # now one of Vision's
    assert api.delete(url).status_code == 204 and not BenchmarkRecord.objects.filter(pk=record.pk).exists()
