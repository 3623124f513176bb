"""Soak (issue 9: "embedded mode never falls over"): 200 short jobs through the real `tango serve` — web server and a
supervised Celery worker on the embedded SQLite broker — with the worker killed once in the middle. Nothing is lost
(every job succeeds, the few the kill interrupted after a retry), nothing is stuck (no job left queued or running),
no job runs twice, and the web server answers throughout while the supervisor starts the worker again."""

import os
import secrets
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from projects.jobs.models import Job, JobLogLine, JobStatus, WorkerHeartbeat
from projects.tests import factories
from projects.tokens import api_token_create
from recommender.services import candidates_for

from .live import Process, child_env, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JOBS = 200
KILL_AFTER = 80  # jobs succeeded when the worker is killed


def wait_for(predicate, timeout, what, serve=None):
    deadline = time.monotonic() + timeout
    pause = 0.1
    while not predicate():
        if time.monotonic() >= deadline:
            counts = {s: Job.objects.filter(status=s).count() for s in JobStatus.values}
            tail = serve.output()[-3000:] if serve else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; jobs {counts}\n{tail}")
        time.sleep(pause)
        pause = min(0.5, pause * 1.5)


class Watcher(threading.Thread):
    """Asks the web server for its sign-in page every 0.25 s and counts the answers that are not a 200."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stopped, self.asked, self.failures = url, threading.Event(), 0, []

    def run(self):
        while not self.stopped.wait(0.25):
            self.asked += 1
            try:
                answer = requests.get(self.url, timeout=10)
                if answer.status_code != 200:
                    self.failures.append(answer.status_code)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))


def live_worker_pid() -> int | None:
    row = WorkerHeartbeat.objects.order_by("-beat_at").first()
    return row.pid if row else None


def succeeded() -> int:
    return Job.objects.filter(status=JobStatus.SUCCEEDED).count()


@pytest.mark.timeout(600)
def test_200_jobs_through_tango_serve_survive_a_worker_kill(tmp_path):
    team = factories.team_with("Soak", alice="owner")
    device, dataset = factories.device(), factories.dataset(team, "soak-data")
    projects = [factories.project(team, name=f"soak-{n}", device=device, dataset=dataset) for n in range(JOBS)]
    # The candidates' costs stored as the first recommendation on an install leaves them (ArchitectureCost), so each
    # job is the short one this soak is about. Left to the worker, each of its two pool processes built and profiled
    # every candidate before its first job: the 80th job succeeded 72 s after the first was sent, 37 s with this.
    candidates_for(task="classification", num_classes=2, input_size=projects[0].input_size)
    _, key = api_token_create(user=team.members.get(), name="soak")
    api = requests.Session()  # one connection pool for the four client threads below
    api.headers["Authorization"] = f"Token {key}"

    port = free_port()
    # Embedded mode even where CI sets REDIS_URL, with its own data folder, so its own broker file: nothing another
    # test queued can reach this worker. A secret key, as a DATABASE_URL (CI's Postgres) means team mode.
    # A job's heartbeat may be late by seconds on a loaded machine: 15 s of silence (not the 4 s of child_env) before
    # a job counts as lost, so that only the jobs the kill interrupts are.
    env = child_env(TANGO_DATA_DIR=str(tmp_path / "data"), TANGO_REAP_INTERVAL_SECONDS="1",
                    TANGO_JOB_STALE_SECONDS="15", SECRET_KEY=secrets.token_urlsafe(50))
    env.pop("REDIS_URL", None)
    serve = Process("serve", [sys.executable, "manage.py", "tango", "serve", "--host", "127.0.0.1", "--port",
                              str(port)], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    watcher = Watcher(url + "/accounts/login/")
    killed = None
    try:
        serve.wait_for_output("TANGO is serving", timeout=120)
        wait_for(lambda: live_worker_pid() is not None, 180, "the worker's first heartbeat", serve)
        wait_for(lambda: requests.get(url + "/accounts/login/", timeout=10).status_code == 200, 120,
                 "the web server", serve)
        watcher.start()
        started = time.monotonic()

        def submit(project):
            return api.post(f"{url}/api/projects/{project.pk}/stages/recommend/run/", timeout=120)

        with ThreadPoolExecutor(4) as clients:  # four API clients at once
            answers = [clients.submit(submit, project) for project in projects]
            # Kill the worker outright — main process and pool, as the OOM killer or a crash would — while jobs run
            # and others wait; jobs sent meanwhile are queued while it is down or starting again.
            wait_for(lambda: succeeded() >= KILL_AFTER, 240, f"{KILL_AFTER} jobs to succeed", serve)
            killed = live_worker_pid()
            os.killpg(killed, signal.SIGKILL)
            killed_at = time.monotonic()
            statuses = [answer.result().status_code for answer in answers]
        assert statuses == [202] * JOBS
        submitted = time.monotonic() - started

        wait_for(lambda: "The worker is running again" in serve.output(), 120, "the worker's restart", serve)
        wait_for(lambda: not Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists(), 240,
                 "every job to finish", serve)
        drained = time.monotonic() - started
        # The jobs the kill interrupted were running: the reaper failed them, saying why; a retry runs them.
        interrupted = list(Job.objects.exclude(status=JobStatus.SUCCEEDED))
        assert len(interrupted) <= 2, [(j.pk, j.status, j.error) for j in interrupted]  # the worker runs two at once
        for job in interrupted:
            assert job.status == JobStatus.FAILED and "stopped answering" in job.error
            assert api.post(f"{url}/api/jobs/{job.pk}/retry/", timeout=60).status_code == 202
        wait_for(lambda: succeeded() == JOBS, 120, "the retried jobs", serve)
        total = time.monotonic() - started
    finally:
        watcher.stopped.set()
        serve.kill(signal.SIGTERM)  # the supervisor stops its worker and the web server
        for pid in set(WorkerHeartbeat.objects.values_list("pid", flat=True)) - {killed}:
            try:  # a worker the supervisor could not stop in time: its whole group (a beat may come from a child)
                group = os.getpgid(pid)
                if group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    jobs = list(Job.objects.all())
    assert len(jobs) == JOBS and {job.project_id for job in jobs} == {p.pk for p in projects}, "nothing lost"
    assert all(job.status == JobStatus.SUCCEEDED for job in jobs), "nothing stuck"
    for job in jobs:  # recorded as succeeded once, however many copies of its message the reaper sent
        lines = JobLogLine.objects.filter(job=job)
        assert lines.filter(text="Recommend succeeded.").count() == 1, job.pk
        # At most once per attempt (an attempt the kill cut short right after its claim said nothing).
        assert 1 <= lines.filter(text__startswith="Recommend started on").count() <= job.attempt, job.pk
    log = serve.output()
    assert log.count("The worker stopped unexpectedly (killed by SIGKILL)") == 1
    assert log.count("The worker is running again") == 1
    assert watcher.failures == [], "the web server answered throughout"
    assert watcher.asked > 20
    redispatched = JobLogLine.objects.filter(text__contains="queued again").count()
    print(f"\nSOAK {JOBS} jobs: submitted in {submitted:.1f} s, all finished {drained:.1f} s, all succeeded "
          f"{total:.1f} s after the first; worker killed {killed_at - started:.1f} s in, {len(interrupted)} "
          f"interrupted and retried, {redispatched} re-dispatched; web asked {watcher.asked} times, 0 failures")
