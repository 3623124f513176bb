"""A full disk while an upload or an export is written: a clear error, and nothing half-written kept.

The fault is the kernel's own: RLIMIT_FSIZE makes every write past the limit fail with EFBIG (Python ignores the
SIGXFSZ that would otherwise kill the process), as a full disk fails them with ENOSPC; both reach the same code.
"""

import os
import resource
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from django.conf import settings

from deployment.engine.onnx_export import export_onnx
from projects.datasets.tests.factories import write_zip
from projects.models import Dataset

pytestmark = pytest.mark.integration


@contextmanager
def disk_full_after(nbytes: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def files_under(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []


def noisy_zip(path: Path) -> Path:
    """About 400 KB that does not compress: random bytes as a class's files (rejected later, if ever read)."""
    return write_zip(path, {f"cat/{i}.png": os.urandom(100_000) for i in range(4)})


def test_a_dataset_upload_on_a_full_disk_is_refused_and_leaves_nothing(world, client_for, tmp_path):
    archive = noisy_zip(tmp_path / "big.zip")
    before = files_under(settings.MEDIA_ROOT)
    with archive.open("rb") as upload, disk_full_after(64 * 1024):
        response = client_for("editor").post("/api/datasets/", {
            "team": world.team.pk, "name": "Big", "task": "classification", "file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["file"] == ["The upload could not be stored: the server's storage is full. Nothing was "
                                       "kept; tell an administrator."]
    assert not Dataset.objects.filter(name="Big").exists()
    assert files_under(settings.MEDIA_ROOT) == before


def test_weights_on_a_full_disk_are_refused_and_leave_nothing(world, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("big.pt", os.urandom(300_000))
    before = files_under(settings.MEDIA_ROOT)
    with disk_full_after(64 * 1024):
        response = client_for("editor").post(f"/api/projects/{world.project.pk}/weights/", {"file": upload},
                                             format="multipart")
    assert response.status_code == 400 and "storage is full" in response.json()["file"][0]
    assert files_under(settings.MEDIA_ROOT) == before


def test_an_export_that_runs_out_of_disk_leaves_no_model_file(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(8, 2))
    with pytest.raises(OSError), disk_full_after(256):
        export_onnx(model, input_size=16, path=tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
    export_onnx(model, input_size=16, path=tmp_path / "model.onnx")  # with room, the same call succeeds
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
