"""A full disk or a data folder the server cannot write, while an upload or an export is written: a clear error
(the page's message, the API's JSON; no 500, no server path), and nothing half-written kept or marked good.

The faults are the kernel's own. Full disk: RLIMIT_FSIZE makes every write past the limit fail with EFBIG (Python
ignores the SIGXFSZ that would otherwise kill the process), as a full disk fails them with ENOSPC; both reach the
same code. Unwritable: the folders are chmod 0500, and since the suite may run as root, whom the kernel lets write
anywhere through CAP_DAC_OVERRIDE, that capability is dropped from this thread's effective set meanwhile (see
`unwritable`): the kernel then refuses the writes with EACCES as it does for a non-root server on a folder it does
not own. Nothing in the portal's code is replaced.
"""

import ctypes
import os
import resource
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deployment import services as deployment_services
from deployment.engine.onnx_export import export_onnx
from deployment.models import Artifact
from projects.datasets.tests.factories import classification_entries, write_zip
from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.storage import absolute, project_dir
from projects.models import Dataset
from tango_common.hashing import sha256_file

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


# --- a data folder the server cannot write ------------------------------------------------------------------------

CAP_DAC_OVERRIDE = 1  # linux/capability.h
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities(change=None):
    """This thread's capability sets (capget), after applying change(data) through capset when given."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    if change is not None:
        change(data)
        if libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capset")
    return data


@contextmanager
def unwritable(root: Path):
    """Every folder under root (root included) mode 0500, as a data folder owned by someone else or mounted
    read-only would be to the server. As root, CAP_DAC_OVERRIDE leaves this thread's effective set meanwhile (it stays
    permitted, so it comes back): capabilities are per thread, and Django's test client runs the view in this one."""
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    modes = {folder: stat.S_IMODE(folder.stat().st_mode) for folder in folders}
    for folder in folders:
        folder.chmod(0o500)
    saved = _capabilities()[0].effective

    def drop(data):
        data[0].effective &= ~(1 << CAP_DAC_OVERRIDE)

    def restore(data):
        data[0].effective = saved

    try:
        if os.geteuid() == 0:
            _capabilities(drop)
        with pytest.raises(PermissionError):  # the fault is real, or the test would prove nothing
            (root / "probe").touch()
        yield
    finally:
        if os.geteuid() == 0:
            _capabilities(restore)
        for folder, mode in modes.items():
            folder.chmod(mode)


def assert_clear(message: str, reason="the server cannot write to its data folder") -> None:
    assert message == f"The upload could not be stored: {reason}. Nothing was kept; tell an administrator."


def dataset_zip(path: Path) -> Path:
    return write_zip(path, classification_entries())


def page_client(world) -> Client:
    client = Client()
    client.force_login(world.users["bob"])  # an editor
    return client


def test_a_dataset_upload_into_an_unwritable_data_folder_is_refused_clearly_and_leaves_nothing(
        world, client_for, tmp_path):
    archive = dataset_zip(tmp_path / "flowers.zip")
    media = Path(settings.MEDIA_ROOT)
    before = files_under(media)
    with archive.open("rb") as upload, unwritable(media):
        response = client_for("editor").post("/api/datasets/", {
            "team": world.team.pk, "name": "Roses", "task": "classification", "file": upload}, format="multipart")
    assert response.status_code == 400
    assert_clear(response.json()["file"][0])
    with archive.open("rb") as upload, unwritable(media):
        page = page_client(world).post("/datasets/upload/", {
            "team": world.team.pk, "name": "Roses", "task": "classification", "file": upload})
    assert page.status_code == 200 and "the server cannot write to its data folder" in page.content.decode()
    assert str(media) not in page.content.decode()
    assert not Dataset.objects.filter(name="Roses").exists()
    assert files_under(media) == before
    with archive.open("rb") as upload:  # writable again, the same upload is kept
        response = client_for("editor").post("/api/datasets/", {
            "team": world.team.pk, "name": "Roses", "task": "classification", "file": upload}, format="multipart")
    assert response.status_code == 201, response.json()


def state_dict_upload(name="imagenet.pt") -> SimpleUploadedFile:
    from projects.tests.test_weights import state_dict_file

    return state_dict_file(name)


@pytest.mark.parametrize("what", ["data folder", "project's folder"])
def test_weights_into_an_unwritable_folder_are_refused_clearly_and_leave_nothing(world, client_for, what):
    """The whole data folder, or only the project's (where checked weights are renamed to: the spool is writable)."""
    media = Path(settings.MEDIA_ROOT)
    folder = media if what == "data folder" else project_dir(world.project.pk)
    assert folder.is_dir()
    before = files_under(media)
    with unwritable(folder):
        response = client_for("editor").post(f"/api/projects/{world.project.pk}/weights/",
                                             {"file": state_dict_upload()}, format="multipart")
        page = page_client(world).post(f"/projects/{world.project.pk}/weights/", {"file": state_dict_upload()})
    assert response.status_code == 400, response.content[:300]
    assert_clear(response.json()["file"][0])
    assert page.status_code == 400 and "the server cannot write to its data folder" in page.content.decode()
    assert str(media) not in page.content.decode()
    world.project.refresh_from_db()
    assert world.project.weights_path == ""
    assert files_under(media) == before
    assert not (project_dir(world.project.pk) / "weights").exists(), "no empty folder left behind"


@pytest.mark.django_db(transaction=True)  # the runner closes stale connections, as a worker does
@pytest.mark.parametrize("stage", ["convert", "package"])
def test_an_export_into_an_unwritable_project_folder_fails_clearly_and_marks_nothing_good(stage, settings, tmp_path):
    """The convert stage (ONNX and engine artifacts) and the package stage (the bundle), run by the worker's runner
    with the project's folder unwritable: the job fails with the reason, no traceback or path, and no artifact."""
    from deployment.tests.training_runs import job_for, trained_run
    from projects.tests import factories

    settings.MEDIA_ROOT = tmp_path / "media"
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    run = trained_run(project)
    if stage == "package":
        convert = job_for(project, "convert")
        convert.result = deployment_services.convert_stage(convert, lambda *args, **kwargs: None)
        Job.objects.filter(pk=convert.pk).update(status=JobStatus.SUCCEEDED, result=convert.result)
    good = set(Artifact.objects.filter(status=Artifact.Status.VERIFIED).values_list("pk", flat=True))
    job = Job.objects.create(project=project, stage=stage, queue="cpu", status=JobStatus.QUEUED)
    before = files_under(settings.MEDIA_ROOT)
    with unwritable(project_dir(project.pk)):
        job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == ("The server cannot write to its data folder, so this stage could not write its files. "
                         "Tell an administrator, then retry.")
    console = "\n".join(job.log_lines.values_list("text", flat=True))
    assert "Traceback" not in console and str(settings.MEDIA_ROOT) not in console
    # Only the trained weights (a whole file, registered before the export began) may be an artifact of the job.
    assert set(Artifact.objects.filter(job=job).values_list("kind", flat=True)) <= {Artifact.Kind.PYTORCH}
    assert not Artifact.objects.filter(kind=Artifact.Kind.BUNDLE).exists()
    for artifact in Artifact.objects.filter(status=Artifact.Status.VERIFIED):  # every file marked good is whole
        path = absolute(artifact.path)
        assert path.is_file() and sha256_file(path) == artifact.sha256, artifact
    assert good <= set(Artifact.objects.filter(status=Artifact.Status.VERIFIED).values_list("pk", flat=True))
    assert files_under(settings.MEDIA_ROOT) == before
    assert absolute(run.weights_path).is_file()
