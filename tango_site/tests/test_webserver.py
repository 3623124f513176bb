"""The web server (tango_site.webserver) on real processes: several uvicorn processes answer on one socket and share
kept-alive connections out, a signal stops them all, a dead one stops the server with a message, and none outlives
a launcher killed outright."""

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

from projects.tests.live import child_env, free_port

ROOT = Path(__file__).resolve().parents[2]


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def connections_held(pid: int, port: int) -> int:
    """Established connections to port whose socket the process holds."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            established.add(f"socket:[{fields[9]}]")
    return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd) in established)


def answers(url: str) -> bool:
    try:
        with urlopen(url + "/accounts/login/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    port = free_port()
    log = (tmp_path / "web.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tango_site.webserver", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: answers(url) or proc.poll() is not None, 120) and proc.poll() is None, (
            tmp_path / "web.log"
        ).read_text()
        workers = children_of(proc.pid)
        assert len(workers) == 2
        yield {"proc": proc, "url": url, "workers": workers, "log": tmp_path / "web.log"}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


def test_every_process_serves_and_sigterm_stops_them_all(server):
    # Each process accepts on the shared socket: with either one stopped, the other answers every request.
    for stopped in server["workers"]:
        os.kill(stopped, signal.SIGSTOP)
        try:
            assert all(answers(server["url"]) for _ in range(3))
        finally:
            os.kill(stopped, signal.SIGCONT)
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(30) == 0
    assert not any(alive(pid) for pid in server["workers"])


def test_kept_alive_connections_are_shared_out_between_the_processes(server):
    # Opened together, as users arriving at once: one process used to take nearly all of them and keep them.
    port = int(server["url"].rsplit(":", 1)[1])
    tabs = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(20)]
    for tab in tabs:
        tab.connect()
    for tab in tabs:
        tab.request("GET", "/accounts/login/")
        response = tab.getresponse()
        response.read()
        assert response.status == 200
    held = [connections_held(pid, port) for pid in server["workers"]]
    for tab in tabs:
        tab.close()
    assert sum(held) == 20 and max(held) - min(held) <= 4, held


def test_a_dead_process_stops_the_server_with_a_message(server):
    os.kill(server["workers"][1], signal.SIGKILL)
    assert server["proc"].wait(30) == 1
    assert wait_for(lambda: not alive(server["workers"][0]), 15)
    assert "stopped unexpectedly" in server["log"].read_text()


def test_no_process_outlives_a_launcher_killed_outright(server):
    server["proc"].kill()
    server["proc"].wait()
    assert wait_for(lambda: not any(alive(pid) for pid in server["workers"]), 15)
