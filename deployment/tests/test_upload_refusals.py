"""A model import, pretrained weights or a try refused by its name or size leaves nothing on disk: not in the data
folder, and not in Django's own temporary upload files either (it is refused as the body is parsed, before any
handler keeps it).

Django writes an upload over FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file in FILE_UPLOAD_TEMP_DIR. These tests
lower that size to 1 KB and point the folder at one that does not exist, so any attempt to write a refused file
would fail the request; where a file passes the name check and is dropped for its size, the folder exists and is
checked empty afterwards.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from deployment.models import Trial
from projects.jobs.models import Job
from projects.tests import factories
from projects.tests.conftest import make_artifact, png_bytes
from projects.tests.upload_checks import django_temp_folder, files_under, page_client, uploads_unkept

from .test_stages import job_for

pytestmark = pytest.mark.django_db

WRONG_FORMAT = "Upload an ONNX model (.onnx) or a TorchScript model"


@pytest.fixture
def world(settings, tmp_path):
    uploads_unkept(settings, tmp_path)
    team = factories.team_with("Vision", alice="owner")
    project = factories.project(team)
    return project, team.members.get(username="alice")


def import_form(name, size, token):
    return {"file": SimpleUploadedFile(name, b"\0" * size), "csrfmiddlewaretoken": token}


def test_a_model_import_page_upload_with_a_wrong_name_is_refused_before_django_writes_it(world, settings):
    project, alice = world
    url = reverse("deployment:model_import", args=[project.pk])
    client, token = page_client(alice, url)
    before = files_under(settings.MEDIA_ROOT)
    response = client.post(url, import_form("virus.exe", 64 * 1024, token))
    assert response.status_code == 400 and WRONG_FORMAT in response.content.decode()
    assert files_under(settings.MEDIA_ROOT) == before and not Job.objects.exists()


def test_an_anonymous_model_import_is_sent_to_sign_in_without_its_body_being_read(world, settings):
    project, _ = world
    url = reverse("deployment:model_import", args=[project.pk])
    client, token = page_client(None, url)
    response = client.post(url, import_form("model.onnx", 64 * 1024, token))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_model_over_the_limit_is_dropped_while_it_streams_in(world, settings, tmp_path):
    project, alice = world
    settings.TANGO_WEIGHTS_MAX_BYTES = 4096
    django_temp_folder(settings, tmp_path)
    url = reverse("deployment:model_import", args=[project.pk])
    client, token = page_client(alice, url)
    before = files_under(settings.MEDIA_ROOT)
    response = client.post(url, import_form("big.onnx", 8192, token))
    assert response.status_code == 400 and "over the 4096-byte limit" in response.content.decode()
    assert files_under(settings.MEDIA_ROOT) == before and not Job.objects.exists()
    assert not any((tmp_path / "django-tmp").iterdir())


@pytest.mark.parametrize(("name", "size", "message"), [
    ("virus.exe", 64 * 1024, WRONG_FORMAT),
    ("big.onnx", 8192, "over the 4096-byte limit"),
])
def test_the_model_import_api_refuses_the_same_files_the_same_way(world, settings, tmp_path, name, size, message):
    project, alice = world
    settings.TANGO_WEIGHTS_MAX_BYTES = 4096
    if name == "big.onnx":  # it passes the name check, so Django's handlers see its first bytes
        django_temp_folder(settings, tmp_path)
    api = APIClient()
    api.force_authenticate(alice)
    before = files_under(settings.MEDIA_ROOT)
    answer = api.post("/api/model-imports/", {"project": project.pk, "file": SimpleUploadedFile(name, b"\0" * size)},
                      format="multipart")
    assert answer.status_code == 400 and message in str(answer.json()["file"])
    assert files_under(settings.MEDIA_ROOT) == before and not Job.objects.exists()
    assert files_under(tmp_path / "django-tmp") == set()


def test_the_try_it_api_drops_an_image_over_the_limit_while_it_streams_in(world, settings, monkeypatch):
    from deployment import trials

    project, alice = world
    monkeypatch.setattr(trials, "MAX_IMAGE_BYTES", 2000)
    artifact = make_artifact(job_for(project, "convert", "succeeded"))
    api = APIClient()
    api.force_authenticate(alice)
    before = files_under(settings.MEDIA_ROOT)
    answer = api.post("/api/trials/", {"project": project.pk, "artifact": artifact.pk,
                                       "image": SimpleUploadedFile("big.png", png_bytes() + b"\0" * 64 * 1024)},
                      format="multipart")
    assert answer.status_code == 400 and "over the" in str(answer.json())
    assert files_under(settings.MEDIA_ROOT) == before and not Trial.objects.exists()


def test_a_model_import_posted_from_another_site_is_refused_for_want_of_the_csrf_token(world, settings):
    """The page is csrf_exempt so its guard is set before the body is read; it checks the token itself."""
    project, alice = world
    url = reverse("deployment:model_import", args=[project.pk])
    client, _ = page_client(alice, url)
    response = client.post(url, import_form("model.onnx", 512, ""))
    assert response.status_code == 403 and not Job.objects.exists()


@pytest.mark.parametrize("via", ["page", "api"])
def test_weights_with_a_wrong_name_are_refused_before_django_writes_them(world, settings, via):
    project, alice = world
    before = files_under(settings.MEDIA_ROOT)
    upload = SimpleUploadedFile("weights.exe", b"\0" * 64 * 1024)
    if via == "page":
        client, token = page_client(alice, reverse("projects:detail", args=[project.pk]))
        response = client.post(reverse("projects:weights", args=[project.pk]),
                               {"file": upload, "csrfmiddlewaretoken": token})
        text = response.content.decode()
    else:
        api = APIClient()
        api.force_authenticate(alice)
        response = api.post(f"/api/projects/{project.pk}/weights/", {"file": upload}, format="multipart")
        text = str(response.json())
    assert response.status_code == 400 and "saved as .pt or .pth" in text
    assert files_under(settings.MEDIA_ROOT) == before
    project.refresh_from_db()
    assert project.weights_path == ""


# --- who may upload is settled before the body is read --------------------------------------------------------------
# A correctly named file passes the guard, so only the role can refuse it before Django keeps it. The temporary folder
# does not exist (the world fixture): had anything read the 64 KB body, keeping the file would have failed the request.

UPLOAD_PAGES = [("deployment:model_import", "file", "model.onnx"), ("projects:weights", "file", "pretrained.pt"),
                ("deployment:try_page", "image", "rose.png")]


@pytest.fixture
def people(world):
    from projects.models import Membership, Role

    project, _ = world
    carol = factories.user("carol")
    Membership.objects.create(team=project.team, user=carol, role=Role.VIEWER)
    dave = factories.team_with("Other lab", dave="owner").members.get(username="dave")
    return {"viewer": carol, "outsider": dave}


@pytest.mark.parametrize(("route", "field", "name"), UPLOAD_PAGES)
@pytest.mark.parametrize(("who", "expected"), [("viewer", 403), ("outsider", 404)])
def test_a_page_upload_from_someone_who_may_not_change_the_project_is_refused_unread(
        world, people, settings, route, field, name, who, expected):
    project, _ = world
    client, token = page_client(people[who], reverse("projects:list"))
    before = files_under(settings.MEDIA_ROOT)
    response = client.post(reverse(route, args=[project.pk]),
                           {field: SimpleUploadedFile(name, b"\0" * 64 * 1024), "csrfmiddlewaretoken": token})
    assert response.status_code == expected
    assert files_under(settings.MEDIA_ROOT) == before and not Job.objects.exists() and not Trial.objects.exists()
    project.refresh_from_db()
    assert project.weights_path == ""


def api_as(user, how):
    if how == "token":
        from projects.tokens import api_token_create

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='laptop')[1]}")
    else:  # a session with its CSRF cookie and header, as a browser's: DRF's check of them would read the body first
        api = APIClient(enforce_csrf_checks=True)
        api.force_login(user)
        api.get(reverse("projects:list"))
        api.credentials(HTTP_X_CSRFTOKEN=api.cookies["csrftoken"].value)
    return api


@pytest.mark.parametrize("how", ["token", "session"])
@pytest.mark.parametrize(("who", "expected"), [("viewer", 403), ("outsider", 404)])
def test_weights_over_the_api_from_someone_who_may_not_change_the_project_are_refused_unread(
        world, people, settings, how, who, expected):
    project, _ = world
    before = files_under(settings.MEDIA_ROOT)
    answer = api_as(people[who], how).post(f"/api/projects/{project.pk}/weights/",
                                           {"file": SimpleUploadedFile("pretrained.pt", b"\0" * 64 * 1024)},
                                           format="multipart")
    assert answer.status_code == expected
    assert files_under(settings.MEDIA_ROOT) == before
    project.refresh_from_db()
    assert project.weights_path == ""


@pytest.mark.parametrize("how", ["token", "session"])
def test_a_viewers_model_import_over_the_api_is_refused_unread(world, people, settings, how):
    """The project is named in the body; a viewer edits no team, so the role refuses the upload before it is read."""
    project, _ = world
    before = files_under(settings.MEDIA_ROOT)
    answer = api_as(people["viewer"], how).post("/api/model-imports/", {
        "project": project.pk, "file": SimpleUploadedFile("model.onnx", b"\0" * 64 * 1024)}, format="multipart")
    assert answer.status_code == 403 and "not an editor or owner of any team" in answer.json()["detail"]
    assert files_under(settings.MEDIA_ROOT) == before and not Job.objects.exists()
