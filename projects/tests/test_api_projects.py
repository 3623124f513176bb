"""Projects over the API: scoping, the shared validation rules, and the stages in the detail."""

import pytest

from projects.jobs.models import JobStatus
from projects.models import Membership, Project, Role

from . import factories
from .conftest import make_job


@pytest.fixture
def alice(client_for):
    return client_for("owner")


def new_project(w, **changes):
    body = {"team": w.team.pk, "name": "Second try", "task": "classification", "dataset": w.dataset.pk,
            "device": w.device.pk, "engine": "onnxruntime", "latency_budget_ms": 40}
    return {**body, **changes}


def names(response):
    return sorted(row["name"] for row in response.data["results"])


def test_project_list_never_shows_another_teams_projects(world, alice, client_for):
    assert names(alice.get("/api/projects/")) == ["Flower sorter", "Fresh start"]
    assert names(client_for("outsider").get("/api/projects/")) == ["Secret project"]


def test_filtering_by_another_teams_id_finds_nothing_rather_than_an_error(world, alice):
    response = alice.get("/api/projects/", {"team": world.other_team.pk})
    assert response.status_code == 200
    assert response.data["count"] == 0


def test_projects_filter_by_team_task_device_and_search_by_name(world, alice):
    other_device = factories.device("Raspberry_Pi_4", accelerator_kind="none", engines=["onnxruntime"])
    Project.objects.filter(pk=world.spare_project.pk).update(device=other_device)
    assert names(alice.get("/api/projects/", {"device": other_device.pk})) == ["Fresh start"]
    assert names(alice.get("/api/projects/", {"team": world.team.pk, "task": "classification"})) == [
        "Flower sorter", "Fresh start"]
    assert names(alice.get("/api/projects/", {"task": "detection"})) == []
    assert names(alice.get("/api/projects/", {"search": "flower"})) == ["Flower sorter"]


def test_creating_a_project_records_the_creator_and_defaults_the_budget_to_the_devices(world, alice):
    body = new_project(world)
    del body["latency_budget_ms"]
    response = alice.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.data
    assert response.data["created_by"] == "alice"
    assert response.data["latency_budget_ms"] == world.device.default_latency_budget_ms
    assert [stage["key"] for stage in response.data["stages"]] == [
        "recommend", "nas", "hpo", "network", "train", "convert", "tvm_tune", "benchmark", "compare", "package"]


def test_a_project_created_in_automatic_mode_starts_its_pipeline_as_the_wizard_does(
        world, alice, dispatch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/projects/", new_project(world, run_mode="auto"), format="json")
    assert response.status_code == 201, response.data
    assert [(s["key"], s["latest_job"]["status"]) for s in response.data["stages"] if s["latest_job"]] == [
        ("recommend", "queued")]
    dispatch.assert_called_once()
    stepwise = alice.post("/api/projects/", new_project(world, name="By hand", run_mode="step"), format="json")
    assert stepwise.status_code == 201 and not any(s["latest_job"] for s in stepwise.data["stages"])


def test_a_dataset_of_a_team_the_user_cannot_see_reads_as_missing(world, alice):
    response = alice.post("/api/projects/", new_project(world, dataset=world.other_dataset.pk), format="json")
    assert response.status_code == 400
    assert "does not exist" in str(response.data["dataset"][0])


def test_a_dataset_from_another_of_the_users_teams_is_refused(world, alice):
    Membership.objects.create(team=world.other_team, user=world.users["alice"], role=Role.VIEWER)
    response = alice.post("/api/projects/", new_project(world, dataset=world.other_dataset.pk), format="json")
    assert response.status_code == 400
    assert response.data == {"dataset": ["The dataset belongs to another team."]}


def test_an_engine_the_device_does_not_run_is_refused_with_the_reason(world, alice):
    response = alice.post("/api/projects/", new_project(world, engine="openvino"), format="json")
    assert response.status_code == 400
    assert response.data["engine"] == [
        "Lab_Jetson does not run OpenVINO; it runs PyTorch, ONNX Runtime, TensorRT, Apache TVM."]


def test_a_duplicate_name_in_the_team_is_refused(world, alice):
    response = alice.post("/api/projects/", new_project(world, name="Flower sorter"), format="json")
    assert response.status_code == 400
    assert response.data == {"name": ["The team already has a project named 'Flower sorter'."]}


def test_changing_a_project_goes_through_the_same_rules(world, alice):
    url = f"/api/projects/{world.project.pk}/"
    assert alice.patch(url, {"precision": "fp16", "input_size": 4}, format="json").data == {
        "input_size": ["Input size must be between 8 and 2048 pixels."]}
    response = alice.patch(url, {"precision": "fp16", "input_size": 64}, format="json")
    assert response.status_code == 200
    world.project.refresh_from_db()
    assert (world.project.precision, world.project.input_size) == ("fp16", 64)


def test_a_project_cannot_move_to_another_team(world, alice):
    target = factories.team_with("Second team", alice="owner")
    response = alice.patch(f"/api/projects/{world.project.pk}/", {"team": target.pk}, format="json")
    assert response.status_code == 400
    assert response.data == {"team": ["A project cannot move to another team."]}


def test_the_detail_shows_each_stage_with_its_latest_job_and_blockers(world, alice):
    stages = {s["key"]: s for s in alice.get(f"/api/projects/{world.project.pk}/").data["stages"]}
    assert stages["recommend"]["latest_job"] == {"id": world.failed_job.pk, "status": "failed", "progress": 0.0}
    assert stages["recommend"]["blockers"] == []
    assert stages["train"]["blockers"] == ["Train is already queued.", "Run Recommend first."]
    assert stages["package"] == {"key": "package", "label": "Package", "latest_job": None,
                                 "blockers": ["Run Benchmark first."], "worker_running": False,  # no worker here
                                 "preview": ""}


def test_a_project_with_a_queued_job_cannot_be_deleted(world, alice):
    response = alice.delete(f"/api/projects/{world.project.pk}/")
    assert response.status_code == 409
    assert response.data["detail"] == "A job of this project is queued or running; cancel it first."
    make_job(world.spare_project, "recommend", JobStatus.SUCCEEDED)
    assert alice.delete(f"/api/projects/{world.spare_project.pk}/").status_code == 204


def test_deleting_a_project_removes_its_files_too(world, alice):
    from projects.jobs.storage import job_dir, project_dir

    job = make_job(world.spare_project, "convert", JobStatus.SUCCEEDED)
    (job_dir(job) / "model.onnx").write_bytes(b"onnx")
    (project_dir(world.spare_project.pk) / "weights").mkdir()
    assert alice.delete(f"/api/projects/{world.spare_project.pk}/").status_code == 204
    assert not project_dir(world.spare_project.pk).exists()
    assert project_dir(world.project.pk).exists(), "another project's files stay"


def test_the_api_starts_the_demo_as_the_page_does(world, alice, client_for, dispatch,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/projects/demo/", {}, format="json")
    assert response.status_code == 201, response.data
    project = Project.objects.get(pk=response.data["id"])
    assert project.team == world.team and project.name == "Digits demo 1"
    assert [s["latest_job"]["status"] for s in response.data["stages"] if s["latest_job"]] == ["queued"]
    dispatch.assert_called_once()
    assert client_for("viewer").post("/api/projects/demo/", {}, format="json").status_code == 403
    assert client_for("frank").post("/api/projects/demo/", {}, format="json").status_code == 403
    assert alice.post("/api/projects/demo/", {"task": "speech"}, format="json").status_code == 400


def test_a_demo_whose_device_left_the_catalog_says_so_and_creates_nothing(world, alice):
    from projects.demo import DEMO_DEVICE
    from recommender.models import Device

    Device.objects.filter(name=DEMO_DEVICE).update(name="Renamed_board")
    before = Project.objects.count()
    response = alice.post("/api/projects/demo/", {}, format="json")
    assert response.status_code == 400 and "no longer in the catalog" in str(response.data)
    assert Project.objects.count() == before


def test_list_times_are_written_in_the_current_time_zone_for_every_row(world, alice):
    # The list reads the time zone once per answer (serializers.timezone_pinned), not once per value.
    from datetime import datetime

    from django.utils import timezone

    with timezone.override("Asia/Kolkata"):
        rows = alice.get("/api/projects/").json()["results"]
    utc = alice.get("/api/projects/").json()["results"]
    assert len(rows) == 2
    for row, row_utc in zip(rows, utc, strict=True):
        project = Project.objects.get(pk=row["id"])
        for field in ("created_at", "updated_at"):
            assert row[field].endswith("+05:30") and row_utc[field].endswith("Z")
            assert datetime.fromisoformat(row[field]) == getattr(project, field)
