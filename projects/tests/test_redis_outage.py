"""Redis stopped and restarted while a console is open: the console falls back to the database tick, a socket
opened during the outage is accepted (it was an HTTP 500), and every line arrives once, in order. And with a real
Celery worker on that Redis (its broker and channel layer), a training job running through the restart finishes, and
its open console shows every line of it."""

import json
import secrets
import shutil
import subprocess
import sys
import time
from urllib.request import urlopen

import pytest
from django.utils import timezone
from websockets.sync.client import connect

from projects.jobs.log import JobLog
from projects.jobs.models import Job, JobStatus
from projects.tests import factories
from projects.tokens import api_token_create

from .live import Process, child_env, free_port, start_worker
from .test_live import session_cookie

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class RedisServer:
    def __init__(self, log_dir):
        self.port, self.log_dir, self.proc = free_port(), log_dir, None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout == b"PONG\n":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def receive_lines(ws, until_seq, timeout=20):
    lines = []
    deadline = time.monotonic() + timeout
    while not lines or lines[-1]["seq"] < until_seq:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "lines":
            lines += message["lines"]
    return lines


def test_the_console_survives_a_redis_restart(settings, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    settings.SECRET_KEY = secrets.token_urlsafe(50)  # team mode (REDIS_URL) refuses the embedded key
    redis = RedisServer(tmp_path)
    redis.start()
    port = free_port()
    web = Process("web", [sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port",
                          str(port), "--workers", "1"],
                  child_env(REDIS_URL=f"redis://127.0.0.1:{redis.port}/0", SECRET_KEY=settings.SECRET_KEY,
                            TANGO_LOG_POLL_SECONDS="0.3"), tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/accounts/login/")
        team = factories.team_with("Vision", alice="owner")
        job = Job.objects.create(project=factories.project(team, name="nano"), stage="train", queue="cpu",
                                 status=JobStatus.RUNNING, started_at=timezone.now())
        log = JobLog(job.pk)
        url = f"ws://127.0.0.1:{port}/ws/jobs/{job.pk}/?format=json"
        headers = {"Cookie": session_cookie("alice"), "Origin": f"http://127.0.0.1:{port}"}
        with connect(url, additional_headers=headers, open_timeout=15) as before:
            for i in range(1, 4):
                log.write(f"line {i}")
            seen = receive_lines(before, 3)
            redis.stop()
            for i in range(4, 7):
                log.write(f"line {i}")
            seen += receive_lines(before, 6)
            # Opened while Redis is down: accepted, and replayed from the database.
            with connect(url, additional_headers=headers, open_timeout=15) as during:
                replayed = receive_lines(during, 6)
                redis.start()
                for i in range(7, 10):
                    log.write(f"line {i}")
                seen += receive_lines(before, 9)
                replayed += receive_lines(during, 9)
                web.wait_for_output("channel layer back", timeout=20)  # pushes resume without a reconnect
        expected = [f"line {i}" for i in range(1, 10)]
        assert [line["text"] for line in seen] == expected
        assert [line["text"] for line in replayed] == expected
        assert "Traceback" not in web.output()
    finally:
        web.kill()
        if redis.proc.poll() is None:
            redis.stop()


@pytest.mark.timeout(1500)  # above the sum of the waits below: training is slow on a busy CI host
def test_a_job_on_a_real_worker_finishes_across_a_redis_restart_and_its_console_shows_every_line(settings, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    import requests

    settings.SECRET_KEY = secrets.token_urlsafe(50)
    redis = RedisServer(tmp_path)
    redis.start()
    env = {"REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "SECRET_KEY": settings.SECRET_KEY}
    port = free_port()
    web = Process("web", [sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port",
                          str(port), "--workers", "1"], child_env(TANGO_LOG_POLL_SECONDS="0.3", **env), tmp_path)
    worker = start_worker(tmp_path, OMP_NUM_THREADS="1", **env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/accounts/login/")
        team = factories.team_with("Vision", alice="owner")
        project = factories.training_project(team, epochs=3, quality_gate=False)
        Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, queue="cpu",
                           result={"model": "resnet18"})
        _, key = api_token_create(user=team.members.get(), name="test")
        started = requests.post(f"{url}/api/projects/{project.pk}/stages/train/run/", timeout=60,
                                headers={"Authorization": f"Token {key}"})  # queued on the worker's Redis
        assert started.status_code == 202, started.text
        job = Job.objects.get(project=project, stage="train")
        headers = {"Cookie": session_cookie("alice"), "Origin": url}
        with connect(f"ws://127.0.0.1:{port}/ws/jobs/{job.pk}/?format=json", additional_headers=headers,
                     open_timeout=15) as console:
            shown = []

            def watch(seconds):
                """Read the console meanwhile, as a page does (an unread socket stops answering pings)."""
                end = time.monotonic() + seconds
                while (left := end - time.monotonic()) > 0:
                    try:
                        message = json.loads(console.recv(timeout=left))
                    except TimeoutError:
                        return
                    if message["type"] == "lines":
                        shown.extend(message["lines"])

            deadline = time.monotonic() + 400
            while not job.log_lines.filter(text__startswith="epoch 1/3 [").exists():  # training is under way
                assert time.monotonic() < deadline, "training never started:\n" + worker.output()[-3000:]
                watch(0.3)
            redis.stop()
            watch(8)  # the worker's broker connection and every push fail meanwhile
            redis.start()
            deadline = time.monotonic() + 600
            job.refresh_from_db()
            while job.status != JobStatus.SUCCEEDED:
                assert job.status == JobStatus.RUNNING, f"{job.status}: {job.error}\n" + worker.output()[-3000:]
                assert time.monotonic() < deadline, "the job did not finish:\n" + worker.output()[-3000:]
                watch(0.5)
                job.refresh_from_db()
            stored = list(job.log_lines.order_by("seq").values_list("seq", "text"))
            if not shown or shown[-1]["seq"] < stored[-1][0]:
                shown += receive_lines(console, stored[-1][0], timeout=60)
        assert [(line["seq"], line["text"]) for line in shown] == stored, "every line once, in order"
        assert stored[-1][1] == "Train succeeded."
    finally:
        worker.kill()
        web.kill()
        if redis.proc.poll() is None:
            redis.stop()
