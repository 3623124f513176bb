"""Redis stopped and restarted while a console is open: the console falls back to the database tick, a socket
opened during the outage is accepted (it was an HTTP 500), and every line arrives once, in order."""

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

from .live import Process, child_env, free_port
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
    web = Process("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                          "tango_site.asgi:application"],
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
