"""A dataset refused by its name or size, or sent by someone who may not upload, leaves nothing on disk: not in the
data folder, and not in Django's own temporary upload files either. The three ways in (the upload page, the New
project wizard's dataset step, the API) share services.guard_dataset_upload and projects.uploads.

How Django is kept from writing anything unnoticed: projects/tests/upload_checks.py.
"""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from projects.datasets.tests.factories import classification_entries, write_zip
from projects.models import Dataset
from projects.tests import factories
from projects.tokens import api_token_create

from .upload_checks import django_temp_folder, files_under, page_client, uploads_unkept

pytestmark = pytest.mark.django_db

NOT_A_ZIP = "notes.txt is not a .zip archive; zip the dataset's folder and upload that."


@pytest.fixture
def world(settings, tmp_path):
    uploads_unkept(settings, tmp_path)
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    return team, team.members.get(username="alice"), team.members.get(username="carol")


def good_zip() -> bytes:
    buffer = io.BytesIO()
    write_zip(buffer, classification_entries())
    return buffer.getvalue()


def send(via, team, user, name, content):
    """Upload a dataset file the way a user of `via` would; (status, the answer's text)."""
    upload = SimpleUploadedFile(name, content)
    if via == "api":
        api = APIClient()
        api.force_authenticate(user)
        answer = api.post("/api/datasets/", {"team": team.pk, "name": "pets", "task": "classification",
                                             "file": upload}, format="multipart")
        return answer.status_code, answer.content.decode()
    if via == "page":
        url = reverse("projects:dataset_upload")
        client, token = page_client(user, reverse("projects:list"))  # a page a viewer sees too
        data = {"team": team.pk, "name": "pets", "task": "classification", "file": upload}
    else:  # the wizard's dataset step, with the team and task of its first step
        url = reverse("projects:create")
        client, token = page_client(user, reverse("projects:list"))  # a page a viewer sees too
        data = {"step": "dataset", "action": "upload", "team": team.pk, "name": "pets-project", "description": "",
                "task": "classification", "upload-name": "pets", "upload-file": upload}
    response = client.post(url, {**data, "csrfmiddlewaretoken": token})
    return response.status_code, response.content.decode()


VIAS = ["page", "wizard", "api"]


@pytest.mark.parametrize("via", VIAS)
def test_a_dataset_with_a_wrong_name_is_refused_before_django_writes_it(world, settings, via):
    team, alice, _ = world
    before = files_under(settings.MEDIA_ROOT)
    status, text = send(via, team, alice, "notes.txt", b"\0" * 64 * 1024)
    assert status in (200, 400) and NOT_A_ZIP in text.replace("&#x27;", "'")
    assert "This field is required" not in text and "No file was submitted" not in text
    assert files_under(settings.MEDIA_ROOT) == before and not Dataset.objects.exists()


@pytest.mark.parametrize("via", VIAS)
def test_a_dataset_over_the_limit_is_dropped_while_it_streams_in(world, settings, tmp_path, via):
    team, alice, _ = world
    settings.TANGO_UPLOAD_MAX_BYTES = 4096
    temp = django_temp_folder(settings, tmp_path)
    before = files_under(settings.MEDIA_ROOT)
    status, text = send(via, team, alice, "big.zip", b"\0" * 8192)
    assert status in (200, 400) and "The archive is over the 4096-byte limit." in text
    assert files_under(settings.MEDIA_ROOT) == before and not Dataset.objects.exists()
    assert not any(temp.iterdir())


@pytest.mark.parametrize("via", VIAS)
def test_a_good_zip_is_still_kept_as_a_dataset_through_the_guard(world, settings, tmp_path, via):
    team, alice, _ = world
    temp = django_temp_folder(settings, tmp_path)
    archive = good_zip()
    assert len(archive) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE, "it goes through Django's temporary file"
    status, _ = send(via, team, alice, "pets.zip", archive)
    dataset = Dataset.objects.get(team=team, name="pets")
    assert status in (200, 201, 302) and dataset.num_images > 0 and dataset.created_by == alice
    assert not any(temp.iterdir()), "Django's temporary file is gone once the dataset is kept"


@pytest.mark.parametrize("via", VIAS)
def test_a_viewers_zip_is_refused_before_its_body_is_read(world, settings, via):
    """Correctly named, so the guard would pass it on: the role is what refuses it, before Django keeps a byte (the
    temporary folder does not exist, so keeping the 64 KB file would fail the request, not answer 403)."""
    team, _, carol = world
    before = files_under(settings.MEDIA_ROOT)
    status, _ = send(via, team, carol, "pets.zip", b"\0" * 64 * 1024)
    assert status == 403
    assert files_under(settings.MEDIA_ROOT) == before and not Dataset.objects.exists()


def test_a_viewers_zip_over_the_api_with_a_token_is_refused_before_its_body_is_read(world, settings):
    team, _, carol = world
    _, key = api_token_create(user=carol, name="carol's laptop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    answer = api.post("/api/datasets/", {"team": team.pk, "name": "pets", "task": "classification",
                                         "file": SimpleUploadedFile("pets.zip", b"\0" * 64 * 1024)},
                      format="multipart")
    assert answer.status_code == 403 and "not an editor or owner of any team" in answer.json()["detail"]
    assert not Dataset.objects.exists()


def test_a_viewers_zip_over_the_api_by_session_is_refused_before_the_csrf_check_reads_it(world, settings):
    """DRF's session check of the CSRF token reads the body; the role is settled before it."""
    team, _, carol = world
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(carol)
    api.get(reverse("projects:list"))  # the CSRF cookie, sent back as the header a browser's script sends
    api.credentials(HTTP_X_CSRFTOKEN=api.cookies["csrftoken"].value)
    answer = api.post("/api/datasets/", {"team": team.pk, "name": "pets", "task": "classification",
                                         "file": SimpleUploadedFile("pets.zip", b"\0" * 64 * 1024)},
                      format="multipart")
    assert answer.status_code == 403 and not Dataset.objects.exists()
