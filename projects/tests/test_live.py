"""Across processes: a real Celery worker runs stages, the web server streams their consoles over websockets."""

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.sync.client import connect

from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.services import job_enqueue
from projects.tests import factories

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice_project():
    team = factories.team_with("Vision", alice="owner")
    factories.team_with("Other", dave="owner")
    return factories.project(team, name="nano")


def session_cookie(username: str) -> str:
    client = Client()
    # force_login: django-axes refuses authenticate() calls that come without a request, as Client.login's do.
    client.force_login(get_user_model().objects.get(username=username))
    return f"sessionid={client.cookies['sessionid'].value}"


def open_console(portal, job, username="alice", query="?format=json"):
    ws_url = portal["url"].replace("http", "ws") + f"/ws/jobs/{job.pk}/{query}"
    return connect(ws_url, additional_headers={"Cookie": session_cookie(username), "Origin": portal["url"]},
                   open_timeout=10)


def read_until_finished(ws, timeout=60):
    """Collect lines and states until the job reports a finished state and its last line arrived."""
    lines, states = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "lines":
            lines += message["lines"]
        else:
            states.append(message)
        if states and states[-1]["finished"] and lines and lines[-1]["text"].endswith(("succeeded.", "Cancelled.")):
            return lines, states
    raise AssertionError(f"no finish within {timeout}s; got {lines[-5:]} {states[-2:]}")


def test_a_stage_runs_on_the_worker_and_its_console_streams_in_order(portal, alice_project):
    job = job_enqueue(project=alice_project, stage_key="recommend")
    with open_console(portal, job) as ws:
        lines, states = read_until_finished(ws)
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(1, len(seqs) + 1)), "no line lost or repeated"
    texts = [line["text"] for line in lines]
    assert any("Jetson_Nano is On-device tier → ResNet-34" in text for text in texts)
    assert states[-1]["status"] == JobStatus.SUCCEEDED and states[-1]["progress"] == 100
    job.refresh_from_db()
    # The ranking's pick (not pinned here: it follows the latency model) is the one the console announced.
    assert f"Recommended: {job.result['model_label']}." in texts and job.worker_host

    # A later visitor gets the same history, in the same order.
    with open_console(portal, job) as ws:
        replay = json.loads(ws.recv(timeout=10))
    assert [line["seq"] for line in replay["lines"]] == seqs


def test_an_outsider_cannot_open_the_console(portal, alice_project):
    job = Job.objects.create(project=alice_project, stage="recommend", queue="cpu")
    with pytest.raises(Exception, match="403|rejected"):
        with open_console(portal, job, username="dave"):
            pass


def test_a_job_retried_after_cancel_runs_again_on_the_worker(portal, alice_project, monkeypatch):
    from projects.jobs import services as job_services

    with monkeypatch.context() as held:  # not handed to the worker yet: the cancel always finds it queued
        held.setattr(job_services, "_dispatch", lambda *args: None)
        job = job_services.job_enqueue(project=alice_project, stage_key="recommend")
        job_services.job_cancel(job=job)
    assert job.status == JobStatus.CANCELLED
    job_services.job_retry(job=job)  # dispatched for real: the worker runs attempt 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == JobStatus.SUCCEEDED:
            break
        time.sleep(0.2)
    assert job.status == JobStatus.SUCCEEDED
    seqs = list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_an_idle_console_stays_open_and_still_streams(portal, alice_project):
    """A quiet job (a long compile, say) must not drop its viewers: idle Redis reads once killed them (1011)."""
    from projects.jobs.log import JobLog

    job = Job.objects.create(project=alice_project, stage="recommend", queue="cpu", status=JobStatus.RUNNING)
    with open_console(portal, job) as ws:
        json.loads(ws.recv(timeout=10))  # the (empty) replay
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:  # longer than redis-py's 5 s default read timeout
            try:
                ws.recv(timeout=deadline - time.monotonic())  # state messages may arrive; the socket must not close
            except TimeoutError:
                break
        JobLog(job.pk).write("still here")
        lines = []
        while not lines:
            message = json.loads(ws.recv(timeout=10))
            lines = [line["text"] for line in message.get("lines", [])]
    assert lines == ["still here"]


def test_a_project_created_through_the_api_in_automatic_mode_runs_on_the_worker(portal, alice_project):
    """The API's create, as the wizard's: automatic mode queues the pipeline, the worker runs it and queues the next
    stage, and the API cancels what is left."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(get_user_model().objects.get(username="alice"))
    body = {"team": alice_project.team_id, "name": "auto", "task": "classification",
            "dataset": alice_project.dataset_id, "device": alice_project.device_id, "engine": "onnxruntime",
            "input_size": 32, "run_mode": "auto"}
    created = api.post("/api/projects/", body, format="json")
    assert created.status_code == 201, created.data
    first = next(s["latest_job"] for s in created.data["stages"] if s["latest_job"])
    project = created.data["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Job.objects.filter(project_id=project).count() < 2:
        time.sleep(0.2)
    jobs = list(Job.objects.filter(project_id=project).order_by("pk"))
    assert [(j.pk, j.stage, j.status) for j in jobs[:1]] == [(first["id"], "recommend", JobStatus.SUCCEEDED)]
    assert len(jobs) == 2, "the worker queued the next stage"
    for job in jobs[1:]:
        cancel = api.post(f"/api/jobs/{job.pk}/cancel/")
        assert cancel.status_code in (200, 409), cancel.data  # 409: it had already finished
    while time.monotonic() < deadline and Job.objects.filter(project_id=project, status__in=["queued",
                                                                                           "running"]).exists():
        time.sleep(0.2)
    assert not Job.objects.filter(project_id=project, status__in=["queued", "running"]).exists()
