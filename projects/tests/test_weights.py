"""User-supplied pretrained weights: checked before they are kept, then used by training."""

import io
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from projects.jobs import services as job_services
from projects.jobs.models import JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue
from projects.services import project_weights_clear, project_weights_set
from projects.tests import factories
from training.engine.zoo import build_model


def state_dict_file(name="pretrained.pt") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    torch.save(build_model("resnet18", num_classes=5, input_size=16).state_dict(), buffer)
    return SimpleUploadedFile(name, buffer.getvalue())


def weights_files(project) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk) / "weights"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture(autouse=True)
def own_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # these tests list the weights folder: no other run's files in it


@pytest.fixture
def project(db):
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    return factories.training_project(team, epochs=1, quality_gate=False)  # one epoch: mechanics, not accuracy


def test_a_state_dict_is_kept_with_its_name_and_checksum(project):
    project = project_weights_set(project=project, upload=state_dict_file())
    assert project.weights_name == "pretrained.pt" and len(project.weights_sha256) == 64
    assert [p.name for p in weights_files(project)] == [Path(project.weights_path).name]
    project_weights_clear(project=project)
    assert project.weights_path == "" and weights_files(project) == []


@pytest.mark.parametrize("upload,message", [
    (SimpleUploadedFile("notes.txt", b"hello"), "saved as .pt or .pth"),
    (SimpleUploadedFile("garbage.pt", b"\x00not a torch file"), "garbage.pt is not a PyTorch weights file"),
    (SimpleUploadedFile("list.pt", b""), "is not a PyTorch weights file"),
])
def test_anything_else_is_refused_and_leaves_nothing_behind(project, upload, message):
    with pytest.raises(ValidationError, match=message):
        project_weights_set(project=project, upload=upload)
    project.refresh_from_db()
    assert project.weights_path == "" and weights_files(project) == []


def test_a_file_over_the_limit_is_refused(project, settings):
    settings.TANGO_WEIGHTS_MAX_BYTES = 100
    with pytest.raises(ValidationError, match="limit"):
        project_weights_set(project=project, upload=state_dict_file())
    assert weights_files(project) == []


def test_the_page_shows_why_a_file_was_refused(project):
    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    response = client.post(f"/projects/{project.pk}/weights/", {"file": SimpleUploadedFile("w.pt", b"junk")})
    assert response.status_code == 400 and "w.pt is not a PyTorch weights file" in response.content.decode()
    response = client.post(f"/projects/{project.pk}/weights/", {"file": state_dict_file("imagenet.pth")})
    assert response.status_code == 302
    assert "imagenet.pth" in client.get(f"/projects/{project.pk}/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_training_starts_from_the_uploaded_weights(monkeypatch):
    monkeypatch.setattr(job_services, "_dispatch", lambda *args: None)
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=1, quality_gate=False)  # one epoch: mechanics, not accuracy
    project_weights_set(project=project, upload=state_dict_file())
    for stage in ("recommend", "train"):
        job = job_enqueue(project=project, stage_key=stage)
        job_execute(job_id=job.pk, attempt=1)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
    log = "\n".join(job.log_lines.values_list("text", flat=True))
    assert "Starting from the uploaded weights pretrained.pt" in log
    # A 5-class head does not fit 3 classes: everything else is loaded.
    assert "loaded 120/122 tensors; skipped (shape differs): fc.bias, fc.weight" in log
