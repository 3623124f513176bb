"""The cast: alice owns the Vision team, bob edits in it, carol only views; dave runs another team (with his own
dataset and project); erin is staff but in no team; frank has signed up and belongs nowhere yet."""

from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from projects import services
from projects.models import Dataset, Job, JobLogLine, JobStatus, Role, Task
from recommender.models import Device, Tier


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def dispatch(monkeypatch):
    """Jobs are handed to Celery on commit; no broker here, so record the hand-off instead."""
    fake = mock.Mock(name="_dispatch")
    monkeypatch.setattr("projects.jobs._dispatch", fake)
    return fake


def make_user(username, **extra):
    return get_user_model().objects.create_user(username, password=f"{username}-password", **extra)


def make_device(name="Test_Board", **fields):
    defaults = dict(
        tier=Tier.PC, vendor="Acme", cpu_arch="x86_64", cpu_cores=4, peak_fp32_gflops=200.0,
        memory_bandwidth_gbps=25.0, memory_mb=8192, os="Ubuntu 24.04", engines=["pytorch", "onnxruntime"],
        default_latency_budget_ms=80.0,
    )
    device, _ = Device.objects.get_or_create(name=name, defaults={**defaults, **fields})
    return device


def make_dataset(team, name, task=Task.CLASSIFICATION):
    return Dataset.objects.create(
        team=team, name=name, task=task, path=f"datasets/test/{team.pk}-{name}", class_names=["cat", "dog"],
        num_images=20, size_bytes=1000, sha256="0" * 64,
    )


def make_project(team, dataset, device, name, **fields):
    return services.project_create(
        team=team, name=name, task=dataset.task, dataset=dataset, device=device, engine="onnxruntime", **fields
    )


def make_job(project, stage, status, lines=()):
    job = Job.objects.create(project=project, stage=stage, status=status, queue="cpu")
    JobLogLine.objects.bulk_create(JobLogLine(job=job, seq=i, text=t) for i, t in enumerate(lines, start=1))
    return job


@pytest.fixture
def world(db):
    people = {name: make_user(name) for name in ("alice", "bob", "carol", "dave", "frank")}
    people["erin"] = make_user("erin", is_staff=True)
    team = services.team_create(name="Vision", owner=people["alice"])
    services.membership_set(team=team, user=people["bob"], role=Role.EDITOR)
    services.membership_set(team=team, user=people["carol"], role=Role.VIEWER)
    other_team = services.team_create(name="Other lab", owner=people["dave"])

    device = make_device()
    dataset = make_dataset(team, "Flowers")
    project = make_project(team, dataset, device, "Flower sorter")
    other_dataset = make_dataset(other_team, "Secret cells")
    w = SimpleNamespace(
        users=people, team=team, other_team=other_team, device=device, dataset=dataset, project=project,
        spare_device=make_device("Spare_Board"),
        spare_dataset=make_dataset(team, "Unused"),
        spare_project=make_project(team, dataset, device, "Fresh start"),
        other_dataset=other_dataset,
        other_project=make_project(other_team, other_dataset, device, "Secret project"),
        failed_job=make_job(project, "recommend", JobStatus.FAILED, ["Recommend queued.", "Boom."]),
        queued_job=make_job(project, "train", JobStatus.QUEUED, ["Train queued."]),
    )
    w.personas = {"owner": people["alice"], "editor": people["bob"], "viewer": people["carol"],
                  "outsider": people["dave"], "staff": people["erin"], "anonymous": None}
    return w


@pytest.fixture
def client_for(world):
    """An API client signed in (by session) as one persona; 'anonymous' is not signed in."""

    def make(persona):
        client = APIClient()
        if world.personas[persona] is not None:
            client.force_login(world.personas[persona])
        return client

    return make
