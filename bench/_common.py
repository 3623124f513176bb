"""What the benches that run a real portal share: their environment, child processes, a Postgres database of
their own, the web server, percentiles.

A bench's parent process never imports Django: settings are read from the environment at import time, and the
bench's database must be the one its children use, never an inherited DATABASE_URL. The Django side (migrate,
seeding, emitters) runs in child processes of the bench script (`child_main`), which print one `RESULT <json>` line.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(data_dir: Path, *, database_url: str | None = None, redis_url: str | None = None, **extra) -> dict:
    """The portal's settings for a bench, on loopback, DEBUG off as deployed (DEBUG keeps every query in memory).

    Inherited DATABASE_URL/REDIS_URL and tuning variables are dropped, so a bench never touches someone's data
    and measures the defaults unless it says otherwise (extra=)."""
    dropped = ("DATABASE_URL", "REDIS_URL", "TANGO_SQLITE_NAME", "TANGO_LOG_POLL_SECONDS", "TANGO_WEB_WORKERS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="tango_site.settings",
        TANGO_DATA_DIR=str(data_dir),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def postgres_database(name: str, *, create: bool) -> str:
    """Drop the bench's database (whoever is connected) and, with create, make it again empty; its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {name}")
    return f"postgres://postgres@127.0.0.1:5432/{name}"


# --- child processes ----------------------------------------------------------------------------------------------


def child_command(script: str, role: str, *args) -> list[str]:
    return [sys.executable, script, f"--child={role}", *map(str, args)]


def parse_result(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


def run_child(script: str, env: dict, role: str, *args, timeout: float = 600) -> dict:
    """Run one role of the bench script under Django and return what it printed as its RESULT."""
    out = subprocess.run(
        child_command(script, role, *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    result = parse_result(out.stdout)
    if result is None:
        raise RuntimeError(f"{role} child failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    return result


def child_main(roles: dict[str, Callable[..., dict]]) -> bool:
    """In a child (argv: --child=ROLE ARGS…): set Django up, run the role, print its RESULT; True when it did."""
    if len(sys.argv) < 2 or not sys.argv[1].startswith("--child="):
        return False
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    result = roles[sys.argv[1].split("=", 1)[1]](*sys.argv[2:])
    print("RESULT " + json.dumps(result), flush=True)
    return True


class Proc:
    """A process in its own session, its output in a file; stop() ends its whole group."""

    def __init__(self, args: list[str], env: dict | None, log_path: Path):
        self.log_path = log_path
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """utime + stime of the process and its children that ran so far (the web server's workers)."""
        return sum(_cpu_seconds(pid) for pid in [self.proc.pid, *_children(self.proc.pid)])

    def connections(self, port: int) -> list[int]:
        """Established connections to `port` that each child process (a web worker) holds, largest first."""
        established = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(fields[9])
        counts = []
        for pid in _children(self.proc.pid):
            try:
                links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue
            counts.append(sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in established))
        return sorted(counts, reverse=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_seconds() -> float:
    """CPU seconds the whole host has spent busy (all cores, everything but idle and iowait) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def start_web(env: dict, log_path: Path, *, workers: int | None = None, timeout: float = 120) -> tuple[Proc, int]:
    """The portal's web server as deployed (tango_site.webserver: uvicorn processes on one socket); (proc, port)."""
    port = free_port()
    args = [sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        args += ["--workers", str(workers)]
    web = Proc(args, env, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2):
                return web, port
        except OSError:
            if web.proc.poll() is not None:
                break
            time.sleep(0.3)
    web.stop()
    raise RuntimeError("the web server did not start:\n" + web.output()[-3000:])


def summarize(values: list[float]) -> dict:
    """Nearest-rank percentiles in ms; empty input gives None so a dead scenario still prints."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pct(p):
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": round(ordered[-1], 1)}
