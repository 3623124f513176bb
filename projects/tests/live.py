"""A real portal for tests that cross processes: the web server (uvicorn processes) and a Celery worker, both on the
test database, with the same broker and channel layer the settings choose (Redis when REDIS_URL is set, the
embedded SQLite broker and database polling otherwise)."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.request import urlopen

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra) -> dict:
    """The environment that points a child process at this test run's database and data folder."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["TANGO_SQLITE_NAME"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
                               f"{db['PORT'] or 5432}/{db['NAME']}")
    env["TANGO_DATA_DIR"] = str(settings.DATA_DIR)
    # One intra-op thread: on a two-core machine shared with the test process (and other test runs), torch's two
    # threads per process spin against each other and a few seconds of training take minutes.
    env.update({"TANGO_JOB_HEARTBEAT_SECONDS": "0.5", "TANGO_JOB_STALE_SECONDS": "4",
                "TANGO_LOG_POLL_SECONDS": "0.1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


class Process:
    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        output = self.output()
        self.kill()  # a half-started child must not outlive the test run
        raise RuntimeError(f"{self.log_path.name} never said {text!r}:\n{output[-3000:]}")

    def kill(self, sig=signal.SIGKILL) -> None:
        """Kill the whole process group: a Celery worker's pool children die with it, as on a lost host."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def start_worker(log_dir: Path, *, beat: bool = False, queues: str = "cpu,gpu", wait: bool = True, **env) -> Process:
    """wait=False: return at once; call worker_ready(worker) before counting on it (workers start side by side)."""
    args = [sys.executable, "-m", "celery", "-A", "tango_site", "worker", "-Q", queues, "--concurrency", "1",
            "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    if beat:
        args += ["-B", "--schedule", str(log_dir / f"beat-{uuid.uuid4().hex[:6]}")]
    worker = Process(f"worker-{uuid.uuid4().hex[:6]}", args, child_env(**env), log_dir)
    if wait:
        worker_ready(worker)
    return worker


def worker_ready(worker: Process) -> None:
    worker.wait_for_output("ready.", timeout=180)  # a loaded CI machine can take a while to import it all


def start_web(log_dir: Path, **env) -> tuple[Process, str]:
    """The web server as deployed (tango_site.webserver): one process embedded, one per CPU (up to 4) with
    Postgres and Redis, so the live tests cross processes as a team install does. `env`: variables to add."""
    port = free_port()
    web = Process("web", [sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port", str(port)],
                  child_env(**env), log_dir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urlopen(url + "/admin/login/", timeout=2):
                return web, url
        except OSError:
            time.sleep(0.3)
    web.kill()
    raise RuntimeError("the web server did not start:\n" + web.output()[-3000:])


def purge_broker() -> None:
    """Drop messages a previous run left behind: job ids restart with the test database."""
    from tango_site.celery import app

    for queue in ("cpu", "gpu"):
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge(queue)
        except Exception:  # the queue does not exist yet
            pass
