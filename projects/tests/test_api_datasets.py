"""Datasets over the API: scoped reads, multipart zip uploads through dataset_create, deletes."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.datasets.tests.factories import classification_entries, write_zip
from projects.models import Dataset


def zip_upload(entries=None, name="pets.zip"):
    buffer = io.BytesIO()
    write_zip(buffer, entries or classification_entries())
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def upload_body(w, **changes):
    return {"team": w.team.pk, "name": "Pets", "task": "classification", "file": zip_upload(), **changes}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def bob(client_for):
    return client_for("editor")


def test_dataset_list_never_shows_another_teams_datasets(world, client_for):
    names = [d["name"] for d in client_for("viewer").get("/api/datasets/").data["results"]]
    assert sorted(names) == ["Flowers", "Unused"]
    assert [d["name"] for d in client_for("outsider").get("/api/datasets/").data["results"]] == [
        world.other_dataset.name]


def test_datasets_filter_by_team_and_task_and_search_by_name(world, client_for):
    carol = client_for("viewer")
    assert carol.get("/api/datasets/", {"team": world.team.pk, "task": "classification"}).data["count"] == 2
    assert carol.get("/api/datasets/", {"task": "detection"}).data["count"] == 0
    assert [d["name"] for d in carol.get("/api/datasets/", {"search": "flow"}).data["results"]] == ["Flowers"]


def test_an_editor_uploads_a_zip_and_gets_the_validated_dataset(world, bob, media):
    response = bob.post("/api/datasets/", upload_body(world), format="multipart")
    assert response.status_code == 201, response.data
    assert (response.data["name"], response.data["class_names"], response.data["num_images"]) == (
        "Pets", ["cat", "dog"], 9)
    assert response.data["created_by"] == "bob"
    dataset = Dataset.objects.get(pk=response.data["id"])
    assert dataset.team == world.team and len(dataset.sha256) == 64
    assert len(files_under(dataset.root)) >= 9


def test_a_rejected_upload_is_a_400_with_the_validators_message_and_leaves_nothing(world, bob, media):
    before = files_under(media)  # the world's own files (an artifact)
    broken = zip_upload({**classification_entries(), "cat/notes.txt": b"hello"})
    response = bob.post("/api/datasets/", upload_body(world, file=broken), format="multipart")
    assert response.status_code == 400
    assert "cat/notes.txt: not an image" in str(response.data["file"][0])
    assert files_under(media) == before
    assert not Dataset.objects.filter(name="Pets").exists()


def test_a_detection_upload_for_a_classification_dataset_is_refused(world, bob):
    response = bob.post("/api/datasets/", upload_body(world, task="detection"), format="multipart")
    assert response.status_code == 400
    assert set(response.data) == {"file"}


def test_a_duplicate_dataset_name_is_refused(world, bob):
    response = bob.post("/api/datasets/", upload_body(world, name="Flowers"), format="multipart")
    assert response.data == {"name": ["The team already has a dataset named 'Flowers'."]}


def test_an_upload_without_a_file_is_a_400(world, bob):
    body = upload_body(world)
    del body["file"]
    assert set(bob.post("/api/datasets/", body, format="multipart").data) == {"file"}


def test_a_dataset_used_by_a_project_cannot_be_deleted(world, bob):
    response = bob.delete(f"/api/datasets/{world.dataset.pk}/")
    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["Projects use this dataset; delete them first."]}
