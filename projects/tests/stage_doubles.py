"""Stage runners for tests of the job machinery itself (the real stages are tested with the real runners)."""

import logging
import threading
import time

calls: list[int] = []
release = threading.Event()
reporters: dict = {}  # job id -> the report callback a double was handed, for tests to watch


def counting_stage(job, report):
    calls.append(job.pk)
    report("working <on> it & more", progress=50)
    logging.getLogger("some.library").info("a library speaks")
    return {"answer": 42}


def failing_stage(job, report):
    report("about to fail")
    raise RuntimeError("boom: the disk is full")


def looping_stage(job, report):
    """Reports until cancelled (or 30 s pass)."""
    deadline = time.monotonic() + 30
    step = 0
    while time.monotonic() < deadline:
        step += 1
        report(f"step {step}", progress=min(99, step))
        time.sleep(0.05)
    return {}


def silent_stage(job, report):
    """Works without reporting, like a long compile: only the heartbeat notices cancellation."""
    reporters[job.pk] = report
    report("compiling")
    release.wait(10)
    report("done compiling")
    return {}


def paced_stage(job, report):
    """Moves 10% a second for 7 s, keeping what the job's progress label said after each step."""
    from projects.jobs.models import Job

    said = []
    for step in range(1, 8):
        report(None, progress=10 * step)
        said.append(Job.objects.get(pk=job.pk).progress_message)
        time.sleep(1)
    return {"said": said}
