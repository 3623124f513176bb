"""What `tango serve` runs its processes with: a worker that dies is started again, the web server stays up.

The worker (Celery) is the process most likely to die — a stage that exhausts memory, a crash in native code, a
broker error — and before this a dead worker took the web server down with it. Now a dead worker is restarted after
a pause that doubles with each quick failure (1 s, 2 s, 4 s… up to a minute; back to 1 s once it has stayed up for a
minute), and each death and restart is a line in the serve log. The web server is not restarted: if it stops
(a port already taken, a broken install), the portal stops with a message, as a crash loop would only hide it.

The worker runs in its own process group, so the pool processes of a dead worker are stopped with it: their jobs'
heartbeats stop, and the reaper fails or re-dispatches those jobs (projects.jobs.reaper). In embedded mode the
supervisor also runs the reaper on its own tick (there is no beat: beat would die with the worker it runs in).

Stopping (SIGTERM or Ctrl-C to `tango serve`) restarts nothing from then on; each child gets SIGTERM, a worker
has `timeout` seconds to finish its running jobs (a second signal cuts that short), then its whole process group is
killed. If `tango serve` itself is killed outright, each child gets a signal from the kernel as its parent dies
(PR_SET_PDEATHSIG): the worker SIGKILL (Celery's pool processes and its embedded beat then die with it), the web
server SIGTERM. Either way no worker is left running with no one to stop it.
"""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tango_common.processes import die_with_parent


@dataclass
class Child:
    name: str
    args: list[str]
    restart: bool  # started again when it dies; otherwise its death stops the portal
    own_group: bool = False  # its own process group: killed as a whole, children included
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_failures: int = 0
    restart_at: float | None = None  # when a dead child is due to start again
    env: dict | None = field(default=None, repr=False)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    BACKOFF_FIRST = 1.0
    BACKOFF_MAX = 60.0
    STABLE_SECONDS = 60.0  # a worker up this long counts as healthy again: its next restart waits BACKOFF_FIRST
    POLL_SECONDS = 0.25

    def __init__(self, children: list[Child], *, echo: Callable[[str], None],
                 tick: Callable[[], None] | None = None, tick_seconds: float = 10.0, **timing):
        self.children = children
        self.echo = echo
        self.tick, self.tick_seconds = tick, tick_seconds
        for name, value in timing.items():  # tests shorten the pauses
            setattr(self, name.upper(), value)
        self.stopping = threading.Event()
        self.hurry = threading.Event()
        self.failure: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def run(self) -> str | None:
        """Supervise until stop() or a child that is not restarted dies; None, or why the portal stopped."""
        next_tick = time.monotonic() + self.tick_seconds
        while not self.stopping.wait(self.POLL_SECONDS):
            now = time.monotonic()
            self.check(now)
            if self.failure:
                break
            if self.tick is not None and now >= next_tick:
                next_tick = now + self.tick_seconds
                self._run_tick()
        self.shutdown()
        return self.failure

    def stop(self, *_) -> None:
        """Stop supervising (a signal handler); asked again while stopping, stop without waiting for the jobs."""
        if self.stopping.is_set():
            self.hurry.set()
        self.stopping.set()

    def check(self, now: float) -> None:
        """Notice dead children; start again those whose pause is over."""
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                self._died(child, now)
            if self.stopping.is_set():
                continue  # stopping: a dead worker stays dead (started now, it would outlive the supervisor)
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                child.restarts += 1  # after the spawn: whoever reads restarts finds the new process in place
                self.echo(f"[tango serve] The {child.name} is running again "
                          f"(pid {child.proc.pid}, restart {child.restarts}).")

    def shutdown(self, timeout: float = 20.0) -> None:
        """SIGTERM to every child (a worker finishes its running jobs), SIGKILL to those still up after timeout
        (or at once on a second stop()); a worker's whole process group goes in the end, whatever is left of it."""
        self.stopping.set()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.proc is None:
                continue
            while child.proc.poll() is None and time.monotonic() < deadline and not self.hurry.is_set():
                self.hurry.wait(0.1)
            if child.proc.poll() is None:
                self._signal(child, signal.SIGKILL)
                child.proc.wait()
            if child.own_group:
                self._kill_group(child)

    # --- internals -----------------------------------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        # A worker must not outlive `tango serve` even when it is killed outright: SIGKILL from the kernel then.
        on_parent_death = signal.SIGKILL if child.own_group else signal.SIGTERM
        child.proc = subprocess.Popen(child.args, env=child.env, start_new_session=child.own_group,
                                      preexec_fn=lambda: die_with_parent(on_parent_death))
        child.started_at = time.monotonic()
        child.restart_at = None

    def _died(self, child: Child, now: float) -> None:
        code = child.proc.returncode
        if child.own_group:
            self._kill_group(child)  # pool processes left behind by a killed worker
        child.proc = None
        if not child.restart:
            self.failure = f"The {child.name} stopped unexpectedly ({_exit_text(code)}); see its output above."
            return
        up_for = now - child.started_at
        child.quick_failures = 0 if up_for >= self.STABLE_SECONDS else child.quick_failures + 1
        pause = min(self.BACKOFF_MAX, self.BACKOFF_FIRST * 2 ** max(0, child.quick_failures - 1))
        child.restart_at = now + pause
        self.echo(f"[tango serve] The {child.name} stopped unexpectedly ({_exit_text(code)}) after {up_for:.0f} s; "
                  f"starting it again in {pause:g} s. The web server stays up; its jobs that were running are "
                  "failed by the reaper, the queued ones wait for it.")

    def _run_tick(self) -> None:
        try:
            self.tick()
        except Exception as exc:  # a locked database, a migration in progress: try again on the next tick
            self.echo(f"[tango serve] The reaper could not run ({type(exc).__name__}: {exc}); trying again.")

    def _signal(self, child: Child, sig: int) -> None:
        try:
            if child.own_group:
                os.killpg(child.proc.pid, sig)
            else:
                child.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _kill_group(child: Child) -> None:
        if child.proc is None:
            return
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
