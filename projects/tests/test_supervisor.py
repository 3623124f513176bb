"""`tango serve`'s supervisor on real processes: a dead worker is started again after a pause that grows with quick
failures, with a line saying so, and the web server stays up; a dead web server stops the portal with a message."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from projects.supervisor import Child, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# A "worker" with a pool child, as Celery's prefork worker has: the child must die with its parent's group.
WITH_POOL = [sys.executable, "-c",
             "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
             " time.sleep(60)"]


def live_members(pgid: int) -> list[int]:
    """Processes of the group that still run: a killed one can linger as a zombie until its new parent reaps it
    (a container's init may never do), which os.killpg(pgid, 0) would still count."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def running(supervisor):
    thread = threading.Thread(target=lambda: setattr(supervisor, "result", supervisor.run()), daemon=True)
    supervisor.start()
    thread.start()
    return thread


def test_a_dead_worker_is_restarted_with_backoff_and_the_web_server_stays_up():
    lines = []
    worker = Child("worker", WITH_POOL, restart=True, own_group=True)
    web = Child("web server", SLEEPER, restart=False)
    supervisor = Supervisor([worker, web], echo=lines.append, POLL_SECONDS=0.05, BACKOFF_FIRST=0.2,
                            BACKOFF_MAX=0.8, STABLE_SECONDS=30)
    thread = running(supervisor)
    try:
        web_pid = web.proc.pid
        pids = []
        for restart in (1, 2, 3, 4):
            assert wait_for(lambda: worker.proc is not None and worker.proc.poll() is None)
            pids.append(worker.proc.pid)
            os.kill(worker.proc.pid, signal.SIGKILL)  # the worker's main process only: its pool child is left
            assert wait_for(lambda n=restart: worker.restarts == n), lines
        assert len(set(pids)) == 4
        assert wait_for(lambda: any(line.endswith(f"(pid {worker.proc.pid}, restart 4).") for line in lines)), lines
        deaths = [line for line in lines if "stopped unexpectedly" in line]
        assert len(deaths) == 4 and all("killed by SIGKILL" in line for line in deaths)
        pauses = [line.split("starting it again in ")[1].split(" s.")[0] for line in deaths]
        assert pauses == ["0.2", "0.4", "0.8", "0.8"]  # doubling, capped at BACKOFF_MAX
        assert web.proc.pid == web_pid and web.proc.poll() is None, "the web server was never touched"
        assert supervisor.failure is None
        for pid in pids:  # each dead worker's pool child went with it
            assert wait_for(lambda pgid=pid: not live_members(pgid), timeout=5), \
                f"a process of worker group {pid} outlived its worker"
    finally:
        supervisor.stop()
        thread.join(30)
    assert supervisor.result is None
    assert web.proc.poll() is not None and worker.proc.poll() is not None, "stop stops every child"


def test_a_worker_that_stays_up_starts_again_after_the_shortest_pause():
    lines = []
    worker = Child("worker", SLEEPER, restart=True, own_group=True)
    supervisor = Supervisor([worker], echo=lines.append, POLL_SECONDS=0.05, BACKOFF_FIRST=0.2, STABLE_SECONDS=0.5)
    thread = running(supervisor)
    try:
        for restart in (1, 2):
            time.sleep(0.6)  # longer than STABLE_SECONDS: each death counts as the first
            os.kill(worker.proc.pid, signal.SIGKILL)
            assert wait_for(lambda n=restart: worker.restarts == n)
        assert all("starting it again in 0.2 s" in line for line in lines if "stopped" in line)
    finally:
        supervisor.stop()
        thread.join(30)


def test_a_dead_web_server_stops_the_portal_with_a_message():
    lines = []
    worker = Child("worker", SLEEPER, restart=True, own_group=True)
    web = Child("web server", [sys.executable, "-c", "import sys; sys.exit(3)"], restart=False)
    supervisor = Supervisor([worker, web], echo=lines.append, POLL_SECONDS=0.05)
    thread = running(supervisor)
    thread.join(30)
    assert supervisor.result == "The web server stopped unexpectedly (exit code 3); see its output above."
    assert worker.proc.poll() is not None, "the worker is stopped with it"


def test_the_tick_runs_on_schedule_and_its_errors_do_not_stop_the_supervisor():
    lines, calls = [], []

    def tick():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    supervisor = Supervisor([Child("worker", SLEEPER, restart=True, own_group=True)], echo=lines.append,
                            tick=tick, tick_seconds=0.2, POLL_SECONDS=0.05)
    thread = running(supervisor)
    try:
        assert wait_for(lambda: len(calls) >= 3)
    finally:
        supervisor.stop()
        thread.join(30)
    assert lines == ["[tango serve] The reaper could not run (RuntimeError: database is locked); trying again."]


def test_once_stopping_a_dead_worker_is_not_started_again():
    lines = []
    worker = Child("worker", SLEEPER, restart=True, own_group=True)
    supervisor = Supervisor([worker], echo=lines.append, BACKOFF_FIRST=0.01)
    supervisor.start()
    try:
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        supervisor.check(time.monotonic())  # noticed: due to start again 0.01 s later
        assert worker.proc is None and worker.restart_at is not None
        supervisor.stop()
        supervisor.check(time.monotonic() + 60)  # long past its pause, but the supervisor is stopping
        assert worker.proc is None and worker.restarts == 0
    finally:
        supervisor.shutdown(timeout=5)


def test_a_second_stop_cuts_the_workers_grace_period_short():
    # A worker that ignores SIGTERM, as a Celery worker finishing a long job does for a while.
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "time.sleep(60)"]
    worker = Child("worker", stubborn, restart=True, own_group=True)
    supervisor = Supervisor([worker], echo=lambda line: None, POLL_SECONDS=0.05)
    thread = running(supervisor)
    time.sleep(0.5)  # the child has set its handler
    started = time.monotonic()
    supervisor.stop()
    time.sleep(0.3)
    supervisor.stop()  # the impatient second Ctrl-C
    thread.join(30)
    assert worker.proc.poll() == -signal.SIGKILL
    assert time.monotonic() - started < 5, "did not wait out the 20 s grace period"


# `tango serve` killed outright (SIGKILL, the OOM killer): a supervisor in a process of its own, with a worker whose
# pool child dies with its parent as Celery's prefork children do (celery.concurrency.prefork.process_initializer).
POOL_CHILD = """
import os, signal, time
from tango_common.processes import die_with_parent
die_with_parent(signal.SIGKILL)
open(os.environ["READY"], "w").close()
time.sleep(60)
"""
FAKE_WORKER = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", os.environ["POOL_CHILD"]])
time.sleep(60)
"""
KILLED_SUPERVISOR = """
import os, sys
from projects.supervisor import Child, Supervisor
worker = Child("worker", [sys.executable, "-c", os.environ["FAKE_WORKER"]], restart=True, own_group=True)
web = Child("web server", [sys.executable, "-c", "import time; time.sleep(60)"], restart=False)
supervisor = Supervisor([worker, web], echo=print)
supervisor.start()
print("PIDS", worker.proc.pid, web.proc.pid, flush=True)
supervisor.run()
"""


def test_a_supervisor_killed_outright_takes_its_worker_group_and_web_server_with_it(tmp_path):
    root = Path(__file__).resolve().parents[2]
    ready = tmp_path / "pool-child-ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SUPERVISOR], cwd=root, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(root), "READY": str(ready),
                                 "POOL_CHILD": POOL_CHILD, "FAKE_WORKER": FAKE_WORKER})
    try:
        worker_pid, web_pid = map(int, proc.stdout.readline().split()[1:])
        assert wait_for(ready.exists), "the worker's pool child started"
        assert len(live_members(worker_pid)) == 2
        proc.kill()
        proc.wait()
        assert wait_for(lambda: not live_members(worker_pid), timeout=10), \
            f"processes of the worker's group outlived tango serve: {live_members(worker_pid)}"
        assert wait_for(lambda: not pid_alive(web_pid), timeout=10), "the web server outlived tango serve"
    finally:
        if proc.poll() is None:
            proc.kill()


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
