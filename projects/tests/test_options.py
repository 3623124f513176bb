"""Project options against the stages' declared schemas (issue 8, defect 1: cross-team model theft through
options.train.weights_path). The API refuses unknown keys, wrong types and out-of-bound values with the reason; a
row that already holds such an option (written before the fix) cannot make the train stage load a file; what a
failed job tells its user carries no server path."""

import pytest

from projects.jobs.models import JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.storage import job_dir
from projects.models import Project

from . import factories
from .conftest import make_job


@pytest.fixture
def bob(client_for):
    return client_for("editor")


def patch(client, project, options):
    return client.patch(f"/api/projects/{project.pk}/", {"options": options}, format="json")


def test_the_api_refuses_a_weights_path_and_names_what_is_wrong(world, bob):
    stolen = job_dir(make_job(world.other_project, "train", JobStatus.SUCCEEDED)) / "model.pt"
    response = patch(bob, world.project, {"train": {"weights_path": str(stolen), "epochs": 1, "lr": 1e-12}})
    assert response.status_code == 400
    message = response.json()["options"][0]
    assert "train.weights_path: unknown option" in message and "train.lr: must be a number from 1e-06" in message
    assert str(stolen.parent) not in message
    world.project.refresh_from_db()
    assert "train" not in world.project.options


@pytest.mark.parametrize("options, problem", [
    ({"train": {"epochs": 0}}, "train.epochs: must be a whole number from 1 to 500, not 0"),
    ({"train": {"batch_size": "64"}}, "train.batch_size: must be a whole number"),
    ({"train": {"optimizer": "lbfgs"}}, "train.optimizer: must be one of 'sgd', 'adamw'"),
    ({"train": {"augmentation": True}}, "train.augmentation: must be one of"),
    ({"model": "../../media/projects/1/jobs/2/model"}, "model: must be a name"),
    ({"hpo": {"trials": 10_000}}, "hpo.trials: must be a whole number from 2 to 200"),
    ({"secret": {}}, "secret: unknown option (known: model, "),
    ({"train": {"overrides": {"epochs": 3}}}, "train.overrides: unknown option"),  # detection's, not ours
])
def test_out_of_bound_and_unknown_options_are_refused(world, bob, options, problem):
    response = patch(bob, world.project, options)
    assert response.status_code == 400 and problem in response.json()["options"][0]


def test_declared_options_are_accepted_and_normalised(world, bob):
    options = {"model": "resnet18", "train": {"epochs": 20.0, "batch_size": 16, "lr": 0.01, "optimizer": "adamw",
                                              "augmentation": "strong", "patience": 4, "min_accuracy": 0.8}}
    response = patch(bob, world.project, options)
    assert response.status_code == 200, response.json()
    assert response.json()["options"]["train"]["epochs"] == 20
    detection = factories.project(world.team, "Boxes", task="detection",
                                  dataset=factories.dataset(world.team, "boxes", task="detection"))
    assert patch(bob, detection, {"train": {"batch": 8, "overrides": {"lr0": 0.01, "mosaic": 0.0}}}).status_code == 200


def test_a_patch_of_one_option_group_keeps_the_others(world, bob):
    """A walk set the epochs with PATCH {"options": {"train": {"epochs": 5}}} after picking YOLO11n on the page: the
    pick (options.model) was dropped and the next run trained the ranking's YOLO11l. The settings page keeps the
    groups it does not edit; a PATCH now does too, and a group sent as null is removed."""
    assert patch(bob, world.project, {"model": "resnet18", "train": {"epochs": 20}}).status_code == 200
    assert patch(bob, world.project, {"train": {"epochs": 5}}).json()["options"] == {
        "model": "resnet18", "train": {"epochs": 5}}
    assert patch(bob, world.project, {"model": None}).json()["options"] == {"train": {"epochs": 5}}
    response = bob.put(f"/api/projects/{world.project.pk}/", {
        **{k: v for k, v in bob.get(f"/api/projects/{world.project.pk}/").json().items()
           if k in ("team", "name", "task", "dataset", "device", "engine", "precision", "input_size")},
        "options": {"model": "resnet34"}}, format="json")
    assert response.status_code == 200 and response.json()["options"] == {"model": "resnet34"}  # PUT replaces


@pytest.mark.django_db(transaction=True)  # the runner closes stale connections, as a worker does
def test_an_old_row_with_a_weights_path_cannot_make_training_load_it(world, settings):
    """Options written before the schema existed: the train stage checks them again, before loading anything."""
    victim = make_job(world.other_project, "train", JobStatus.SUCCEEDED)
    stolen = job_dir(victim) / "model.pt"
    stolen.write_bytes(b"the other team's weights")
    Project.objects.filter(pk=world.project.pk).update(options={"train": {"weights_path": str(stolen), "epochs": 1}})
    make_job(world.project, "recommend", JobStatus.SUCCEEDED).__class__.objects.filter(
        project=world.project, stage="recommend").update(result={"model": "resnet18"})
    job = make_job(world.project, "train", JobStatus.QUEUED)
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "weights_path: unknown option" in job.error and "project's settings page" in job.error
    shown = job.error + "\n".join(job.log_lines.values_list("text", flat=True))
    assert str(settings.MEDIA_ROOT) not in shown and "Traceback" not in shown
    assert not (job_dir(job, keep=True) / "model.pt").exists()


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_error_reaches_the_user_without_server_paths(world, settings, monkeypatch):
    from projects.jobs import registry

    def boom(job, report):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{settings.MEDIA_ROOT}/projects/9/x.pt'")

    monkeypatch.setattr("projects.tests.stage_doubles.failing_stage", boom)
    with registry.stage_overridden("recommend", runner="projects.tests.stage_doubles.failing_stage"):
        job = make_job(world.project, "recommend", JobStatus.QUEUED)
        job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    shown = job.error + "\n".join(job.log_lines.values_list("text", flat=True))
    assert job.status == JobStatus.FAILED and "x.pt" in job.error
    assert str(settings.MEDIA_ROOT) not in shown and str(settings.BASE_DIR) not in shown


def test_a_project_created_without_an_input_size_takes_its_images_size(world, bob):
    world.dataset.stats = {"common_sizes": [{"width": 64, "height": 64, "count": 300}]}
    world.dataset.save()
    body = {"team": world.team.pk, "name": "Small photos", "task": "classification", "dataset": world.dataset.pk,
            "device": world.device.pk, "engine": "onnxruntime"}
    response = bob.post("/api/projects/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["input_size"] == 64, "64 px photos are not enlarged to 224"
