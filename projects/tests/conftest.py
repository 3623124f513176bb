"""The API's cast: alice owns the Vision team, bob edits in it, carol only views; dave runs another team (with his
own dataset and project); erin is staff but in no team; frank has signed up and belongs nowhere yet."""

from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from projects.jobs.models import Job, JobLogLine, JobStatus

from . import factories


@pytest.fixture
def dispatch(monkeypatch):
    """Jobs are handed to Celery on commit; no broker here, so record the hand-off instead."""
    fake = mock.Mock(name="_dispatch")
    monkeypatch.setattr("projects.jobs.services._dispatch", fake)
    monkeypatch.setattr("deployment.trials._dispatch", mock.Mock(name="trial _dispatch"))  # Try it's short task
    return fake


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def make_artifact(job, name="model.onnx", data=b"onnx bytes"):
    """An artifact with its file on disk, where the pipeline would have put it."""
    from deployment.models import Artifact
    from projects.jobs.storage import job_dir, relative

    path = job_dir(job) / name
    path.write_bytes(data)
    return Artifact.objects.create(project=job.project, job=job, kind=Artifact.Kind.ONNX, engine="onnxruntime",
                                   path=relative(path), size_bytes=len(data), sha256="0" * 64,
                                   status=Artifact.Status.VERIFIED)


def png_bytes(size=(8, 6), colour=(200, 30, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def make_trial(artifact, user=None):
    """A finished try of the artifact on a small PNG, its image on disk where Try it keeps uploads."""
    from deployment.models import Trial
    from projects.jobs.storage import project_dir, relative

    path = project_dir(artifact.project_id) / "trials" / "example.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes())
    return Trial.objects.create(project=artifact.project, artifact=artifact, requested_by=user,
                                image_path=relative(path), image_name="example.png", status="succeeded",
                                result={"top": [{"label": "rose", "index": 0, "probability": 0.9}]})


def make_job(project, stage, status, lines=()):
    job = Job.objects.create(project=project, stage=stage, status=status, queue="cpu")
    JobLogLine.objects.bulk_create(JobLogLine(job=job, seq=i, text=t) for i, t in enumerate(lines, start=1))
    return job


@pytest.fixture
def world(db, settings, dispatch, media):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # throttle counters are kept in the cache, and user ids repeat between tests
    team = factories.team_with("Vision", alice="owner", bob="editor", carol="viewer")
    other_team = factories.team_with("Other lab", dave="owner")
    people = {u.username: u for u in team.members.all() | other_team.members.all()}
    people["erin"] = factories.user("erin", is_staff=True)
    people["frank"] = factories.user("frank")

    device = factories.device("Lab_Jetson")  # our own row, whatever the seeded catalog holds
    dataset = factories.dataset(team, "Flowers")
    project = factories.project(team, "Flower sorter", dataset=dataset, device=device)
    w = SimpleNamespace(
        users=people, team=team, other_team=other_team, device=device, dataset=dataset, project=project,
        spare_device=factories.device("Spare_Board"),
        spare_dataset=factories.dataset(team, "Unused"),
        spare_project=factories.project(team, "Fresh start", dataset=dataset, device=device),
        other_project=factories.project(other_team, "Secret project"),
        failed_job=make_job(project, "recommend", JobStatus.FAILED, ["Recommend queued.", "Boom."]),
        queued_job=make_job(project, "train", JobStatus.QUEUED, ["Train queued."]),
    )
    w.other_dataset = w.other_project.dataset
    w.artifact = make_artifact(w.failed_job)
    w.personas = {"owner": people["alice"], "editor": people["bob"], "viewer": people["carol"],
                  "outsider": people["dave"], "staff": people["erin"], "anonymous": None}
    return w


@pytest.fixture
def client_for(world):
    """An API client signed in (by session) as a persona or a username; 'anonymous' is not signed in."""

    def make(who):
        client = APIClient()
        user = world.personas[who] if who in world.personas else world.users[who]
        if user is not None:
            client.force_login(user)
        return client

    return make
