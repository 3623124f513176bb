"""A stage started while the broker is down (issue 8, defect 3): the job fails at once with a clear message, the
API answers 503 and the page shows the message (it was a 500, and the job stayed queued, blocking the stage)."""

import re
import secrets
import sys

import pytest
import requests

from projects.jobs.models import Job, JobStatus
from projects.jobs.services import NOT_QUEUED
from projects.tests import factories
from projects.tokens import api_token_create

from .live import Process, child_env, free_port
from .test_live import session_cookie
from .test_redis_outage import wait_http

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_stage_started_while_the_broker_is_down_fails_clearly_and_can_run_again(settings, tmp_path):
    settings.SECRET_KEY = secrets.token_urlsafe(50)  # team mode (REDIS_URL) refuses the embedded key
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    port = free_port()
    web = Process("web", [sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port",
                          str(port), "--workers", "1"],
                  child_env(REDIS_URL=dead_broker, SECRET_KEY=settings.SECRET_KEY), tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/accounts/login/")
        team = factories.team_with("Vision", alice="owner")
        project = factories.project(team, name="nano")
        _, key = api_token_create(user=team.members.get(), name="test")
        api = requests.Session()
        api.headers["Authorization"] = f"Token {key}"

        for _ in range(2):  # the failed job does not block the stage: a second try is refused the same way
            answer = api.post(f"{url}/api/projects/{project.pk}/stages/recommend/run/", timeout=60)
            assert (answer.status_code, answer.json()) == (503, {"detail": NOT_QUEUED})
        jobs = list(Job.objects.filter(project=project))
        assert [(j.status, j.error) for j in jobs] == [(JobStatus.FAILED, NOT_QUEUED)] * 2
        assert NOT_QUEUED in [line.text for line in jobs[0].log_lines.all()]

        browser = requests.Session()
        browser.cookies.set("sessionid", session_cookie("alice").split("=", 1)[1])
        page = browser.get(f"{url}/projects/{project.pk}/", timeout=30)
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
        panel = browser.post(f"{url}/projects/{project.pk}/stages/recommend/run/", timeout=60,
                             headers={"X-CSRFToken": token, "Referer": url + "/"})
        assert panel.status_code == 200 and "the broker) is unreachable" in panel.text
    finally:
        web.kill()
