"""Deleting a project from its edit page: rows and files go; a running job or no confirmation keeps it."""

import pytest
from django.urls import reverse

from projects.jobs.models import JobStatus
from projects.jobs.storage import job_dir, project_dir
from projects.models import Project

from .conftest import make_job


def test_the_owner_deletes_a_project_and_its_files(world, client_for):
    job = make_job(world.spare_project, "convert", JobStatus.SUCCEEDED)
    (job_dir(job) / "model.onnx").write_bytes(b"onnx")
    response = client_for("owner").post(reverse("projects:delete", args=[world.spare_project.pk]), {"confirm": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("projects:list")
    assert not Project.objects.filter(pk=world.spare_project.pk).exists()
    assert not project_dir(world.spare_project.pk).exists()


@pytest.mark.parametrize("who,body,expected", [
    ("owner", {}, 409),  # not confirmed
    ("viewer", {"confirm": "1"}, 403),
    ("outsider", {"confirm": "1"}, 404),
])
def test_a_project_stays_without_confirmation_or_rights(world, client_for, who, body, expected):
    response = client_for(who).post(reverse("projects:delete", args=[world.spare_project.pk]), body)
    assert response.status_code == expected
    assert Project.objects.filter(pk=world.spare_project.pk).exists()


def test_a_project_with_a_queued_job_stays_and_the_page_says_why(world, client_for):
    response = client_for("owner").post(reverse("projects:delete", args=[world.project.pk]), {"confirm": "1"})
    assert response.status_code == 409
    assert "queued or running; cancel it first" in response.content.decode()
    assert project_dir(world.project.pk).exists()
