"""Try it, through the page and the API, on a real converted model: the worker's answer equals the PyTorch model's,
and a refused upload leaves nothing on disk."""

import io

import pytest
import torch
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from deployment import services, trials
from deployment.models import Artifact, Trial
from projects.jobs.storage import project_dir
from projects.tests import factories
from tango_common.images import preprocess_image

from .test_stages import INPUT_SIZE, job_for
from .test_stages import trained as trained  # noqa: F401  (the fixture, on this module's project)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    torch.manual_seed(0)
    team = factories.team_with("Vision", alice="owner", bob="editor", carol="viewer")
    factories.team_with("Other lab", dave="owner")
    return factories.training_project(team)


@pytest.fixture
def onnx(project, trained):  # noqa: F811
    """The trained model's ONNX export, as the convert stage leaves it (its parity check has tests of its own)."""
    from deployment.engine.onnx_export import export_onnx
    from projects.jobs.storage import job_dir, relative

    job = job_for(project, "convert", "succeeded")
    path = export_onnx(services._load_trained_model(trained), input_size=INPUT_SIZE, path=job_dir(job) / "model.onnx")
    return Artifact.objects.create(project=project, job=job, training_run=trained, kind="onnx", engine="onnxruntime",
                                   path=relative(path), sha256="0" * 64, status="verified")


@pytest.fixture
def worker(monkeypatch, django_capture_on_commit_callbacks):
    """The Celery hand-off runs the trial at once, as a worker would."""
    monkeypatch.setattr(trials, "_dispatch", trials.trial_execute)
    return django_capture_on_commit_callbacks


@pytest.fixture
def light(settings, tmp_path):
    """(project, artifact) without a dataset on disk or a trained model: for the checks done before anything runs."""
    from projects.tests.conftest import make_artifact

    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner", bob="editor")
    project = factories.project(team, "Light")
    return project, make_artifact(job_for(project, "convert", "succeeded"))


def browser(project, username):
    client = Client()
    client.force_login(project.team.members.get(username=username))
    return client


def alice_tries(project, onnx, worker, name, data):
    """(alice's API client, the answer to her try of `data` through the API, run by the worker at once)."""
    api = APIClient()
    api.force_authenticate(project.team.members.get(username="alice"))
    with worker(execute=True):
        created = api.post("/api/trials/", {"project": project.pk, "artifact": onnx.pk, "top_k": 1,
                                            "image": SimpleUploadedFile(name, data)}, format="multipart")
    assert created.status_code == 201, created.data
    return api, created


def val_image(project):
    return sorted((project.dataset.root / "val").glob("*/*.png"))[0]


def pytorch_top1(project, run, image):
    model = services._load_trained_model(run)
    with torch.inference_mode():
        logits = model(torch.from_numpy(preprocess_image(image, INPUT_SIZE)[None]))[0]
    return project.dataset.class_names[int(logits.argmax())]


def test_an_editor_uploads_an_image_and_the_worker_answers_like_pytorch(project, trained, onnx, worker):  # noqa: F811
    image = val_image(project)
    with worker(execute=True):
        response = browser(project, "bob").post(reverse("deployment:try_page", args=[project.pk]), {
            "artifact": onnx.pk, "top_k": 2, "image": SimpleUploadedFile("flower.png", image.read_bytes())})
    assert response.status_code == 302
    trial = Trial.objects.get()
    assert trial.status == "succeeded", trial.error
    assert trial.result["top"][0]["label"] == pytorch_top1(project, trained, image)
    assert len(trial.result["top"]) == 2 and trial.result["latency_ms"] > 0
    page = browser(project, "carol").get(reverse("deployment:try_page", args=[project.pk]))
    assert page.status_code == 200 and trial.result["top"][0]["label"] in page.content.decode()
    assert b'data-testid="try-form"' not in page.content  # a viewer sees tries but runs none
    picture = browser(project, "carol").get(reverse("deployment:trial_image", args=[trial.pk]))
    assert picture.status_code == 200 and b"".join(picture.streaming_content) == image.read_bytes()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("notes.png", b"just some text, not pixels", "not a JPEG, PNG"),
    ("cut.png", None, "is a PNG image but Pillow cannot decode it"),  # a PNG cut in half
])
def test_a_file_that_is_not_an_image_is_refused_before_it_is_kept(light, name, data, message):
    project, onnx = light
    if data is None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="PNG")
        data = buffer.getvalue()[:60]
    response = browser(project, "bob").post(reverse("deployment:try_page", args=[project.pk]), {
        "artifact": onnx.pk, "image": SimpleUploadedFile(name, data)})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Trial.objects.exists() and not (project_dir(project.pk) / "trials").exists()


def test_an_image_over_the_limit_is_dropped_while_it_streams_in(light, monkeypatch):
    project, onnx = light
    monkeypatch.setattr(trials, "MAX_IMAGE_BYTES", 2000)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    big = buffer.getvalue() + b"\0" * 4000
    response = browser(project, "bob").post(reverse("deployment:try_page", args=[project.pk]), {
        "artifact": onnx.pk, "image": SimpleUploadedFile("big.png", big)})
    assert response.status_code == 400 and "over the" in response.content.decode()
    assert not Trial.objects.exists() and not (project_dir(project.pk) / "trials").exists()


def test_the_api_queues_a_try_and_reads_its_answer(project, trained, onnx, worker):  # noqa: F811
    image = val_image(project)
    api, created = alice_tries(project, onnx, worker, "flower.png", image.read_bytes())
    answer = api.get(f"/api/trials/{created.data['id']}/").data
    assert answer["status"] == "succeeded"
    assert [t["label"] for t in answer["result"]["top"]] == [pytorch_top1(project, trained, image)]
    # Another team's member cannot name this project, nor read the try.
    dave = APIClient()
    dave.force_authenticate(get_user_model().objects.get(username="dave"))
    refused = dave.post("/api/trials/", {"project": project.pk, "artifact": onnx.pk,
                                         "image": SimpleUploadedFile("x.png", image.read_bytes())}, format="multipart")
    assert refused.status_code == 400 and dave.get(f"/api/trials/{created.data['id']}/").status_code == 404
    bad = api.post("/api/trials/", {"project": project.pk, "artifact": onnx.pk,
                                    "image": SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\n but not really")},
                   format="multipart")
    assert bad.status_code == 400 and "not a JPEG, PNG, BMP, WebP or TIFF image" in str(bad.data["image"])


def test_a_tiff_is_tried_like_the_dataset_upload_takes_it_and_a_gif_is_refused_like_there(project, trained, onnx,
                                                                                          worker):  # noqa: F811
    image = val_image(project)
    buffer = io.BytesIO()
    with Image.open(image) as picture:
        picture.save(buffer, format="TIFF")
    api, created = alice_tries(project, onnx, worker, "flower.tif", buffer.getvalue())
    trial = Trial.objects.get(pk=created.data["id"])
    assert trial.status == "succeeded", trial.error
    assert trial.image_path.endswith(".tif")
    assert [t["label"] for t in trial.result["top"]] == [pytorch_top1(project, trained, image)]
    # The try page names the same types; a GIF, which a dataset may not hold either, is refused before it is kept.
    page = browser(project, "alice").get(reverse("deployment:try_page", args=[project.pk])).content.decode()
    assert "JPEG, PNG, BMP, WebP or TIFF" in page
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    refused = api.post("/api/trials/", {"project": project.pk, "artifact": onnx.pk,
                                        "image": SimpleUploadedFile("x.gif", gif.getvalue())}, format="multipart")
    assert refused.status_code == 400 and "not a JPEG, PNG, BMP, WebP or TIFF image" in str(refused.data["image"])
    assert Trial.objects.count() == 1


def test_a_detector_s_answer_is_its_boxes_drawn_on_the_image(settings, tmp_path, django_capture_on_commit_callbacks,
                                                           monkeypatch):
    from deployment.engine.detect_onnx import export_detector_onnx
    from projects.jobs.models import Job
    from projects.jobs.storage import job_dir, relative
    from training.engine.yolo.zoo import build_detection_model
    from training.models import TrainingRun

    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="boxes")
    project.task = "detection"
    project.save()
    torch.manual_seed(0)
    model = build_detection_model("yolo11n", nc=1).eval()
    job = Job.objects.create(project=project, stage="convert", status="succeeded")
    path = export_detector_onnx(model, input_size=64, path=job_dir(job) / "model.onnx")
    run = TrainingRun.objects.create(job=Job.objects.create(project=project, stage="train", status="succeeded"),
                                     project=project, model_name="yolo11n", architecture={
                                         "num_classes": 1, "class_names": ["cat"], "input_size": 64})
    onnx = Artifact.objects.create(project=project, job=job, training_run=run, kind="onnx", engine="onnxruntime",
                                   path=relative(path), sha256="0" * 64, status="verified")
    monkeypatch.setattr(trials, "_dispatch", trials.trial_execute)
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (120, 90, 60)).save(buffer, format="JPEG")
    with django_capture_on_commit_callbacks(execute=True):
        trial = trials.trial_create(project=project, artifact=onnx, upload=SimpleUploadedFile(
            "street.jpg", buffer.getvalue()), user=None)
    trial.refresh_from_db()
    assert trial.status == "succeeded", trial.error
    assert isinstance(trial.result["boxes"], list) and (trial.result["width"], trial.result["height"]) == (96, 64)
    client = Client()
    client.force_login(team.members.get(username="alice"))
    drawn = client.get(reverse("deployment:trial_image", args=[trial.pk]) + "?annotated=1")
    assert drawn.status_code == 200 and drawn["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(drawn.streaming_content))).size == (96, 64)


def test_the_api_lists_the_models_try_it_offers(light):
    """Try it offers the project's verified models that run here; `?triable=true` lists the same ones."""
    import re

    from projects.tests.conftest import make_artifact

    project, onnx = light
    job = onnx.job
    bundle = make_artifact(job, "bundle.zip")
    Artifact.objects.filter(pk=bundle.pk).update(kind=Artifact.Kind.BUNDLE)
    failed = make_artifact(job, "failed.onnx")
    Artifact.objects.filter(pk=failed.pk).update(status=Artifact.Status.FAILED)
    on_device = make_artifact(job, "model.rknn")
    Artifact.objects.filter(pk=on_device.pk).update(kind=Artifact.Kind.RKNN, runs=Artifact.Runs.ON_DEVICE)
    page = browser(project, "bob").get(reverse("deployment:try_page", args=[project.pk])).content.decode()
    offered = [int(pk) for pk in re.findall(r'<option value="(\d+)"', page)]
    assert offered == [onnx.pk]

    api = APIClient()
    api.force_authenticate(project.team.members.get(username="bob"))
    listed = api.get("/api/artifacts/", {"project": project.pk, "triable": "true"}).data["results"]
    assert [a["id"] for a in listed] == offered
    others = api.get("/api/artifacts/", {"project": project.pk, "triable": "false"}).data["results"]
    assert sorted(a["id"] for a in others) == sorted([bundle.pk, failed.pk, on_device.pk])
