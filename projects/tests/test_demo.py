"""The first-run experience: `tango setup`, and the one-click digits demo."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from projects.jobs import services as job_services
from projects.jobs.models import Job
from projects.models import Project, RunMode
from projects.tests import factories
from recommender.models import Device

pytestmark = pytest.mark.django_db


def test_setup_creates_the_admin_the_demo_team_and_reads_this_server(settings, capsys):
    call_command("tango", "setup")
    out = capsys.readouterr().out
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.teams.filter(name="Demo team").exists()
    password = (settings.DATA_DIR / "initial-admin-password.txt").read_text().strip()
    assert f"password {password}" in out and admin.check_password(password)
    assert Device.objects.get(name="This_Server").is_host
    call_command("tango", "setup")  # a second run changes nothing and still says how to log in
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_try_the_demo_creates_the_digits_project_and_starts_its_pipeline(monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(job_services, "_dispatch", lambda *args: sent.append(args))
    factories.team_with("Vision", alice="owner")
    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/projects/demo/")
    project = Project.objects.get(name="Digits demo 1")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert project.device.name == "Odroid_N2" and project.run_mode == RunMode.AUTO and project.input_size == 8
    assert project.dataset.num_images == 1797 and project.dataset.class_names == [str(d) for d in range(10)]
    assert project.dataset.stats["common_sizes"][0] == {"width": 8, "height": 8, "count": 1797}, "the size it trains at"
    assert Job.objects.get(project=project).stage == "recommend" and len(sent) == 1


def test_a_viewer_cannot_start_the_demo():
    factories.team_with("Vision", carol="viewer")
    client = Client()
    client.force_login(get_user_model().objects.get(username="carol"))
    assert client.post("/projects/demo/").status_code == 403
    assert not Project.objects.exists()
