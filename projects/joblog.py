"""The one log mechanism: every stage's console goes through JobLog.

A line is persisted with the next sequence number first, then pushed to the job's channel group. The push is
at-most-once, so viewers number what they got and refetch any gap from the database.
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from .models import Job, JobLogLine

logger = logging.getLogger(__name__)
# Every job line is echoed here at DEBUG: `manage.py tango demo` turns it on to print the live log.
echo = logging.getLogger("projects.joblog.echo")

MAX_LINE_CHARS = 4000


class _LoopThread:
    """One event loop per process for pushes from sync code (Celery tasks, views).

    async_to_sync would make a fresh loop per call, which channels-redis pools do not survive
    ("Event loop is closed"); a long-lived loop keeps one connection pool per process.
    """

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="joblog-push", daemon=True).start()

    def run(self, coro, timeout=5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


_loop: _LoopThread | None = None
_loop_lock = threading.Lock()


def push(group: str, message: dict) -> None:
    """Send to a channel group when the layer crosses processes (Redis); a lost push is repaired by readers."""
    if not settings.TANGO_LOG_PUSH:
        return
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid():  # a forked worker child needs its own loop
            _loop = _LoopThread()
    try:
        _loop.run(get_channel_layer().group_send(group, message))
    except Exception as exc:  # the database has the line; viewers will catch up from it
        logger.warning("push to %s failed: %s", group, exc)


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


class JobLog:
    def __init__(self, job_id: int):
        self.job_id = job_id
        self.group = job_group(job_id)
        self._lock = threading.Lock()  # library threads may log while the stage writes
        self._seq = JobLogLine.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"] or 0

    def write(self, text: str) -> None:
        lines = [line[:MAX_LINE_CHARS] for line in str(text).splitlines()] or [""]
        with self._lock:
            rows = self._persist(lines)
            if echo.isEnabledFor(logging.DEBUG):
                for row in rows:
                    echo.debug("[%s] %s", self.job_id, row.text)
            push(self.group, {"type": "log.lines", "lines": [{"seq": r.seq, "text": r.text} for r in rows]})

    def _persist(self, lines: list[str]) -> list[JobLogLine]:
        """Number and insert the lines. Another process may write to the same job (a cancel request, the reaper):
        the unique (job, seq) index then refuses our numbers, and we renumber after the latest line and retry."""
        for _ in range(20):
            now = timezone.now()
            rows = [JobLogLine(job_id=self.job_id, seq=self._seq + i, text=line, created_at=now)
                    for i, line in enumerate(lines, start=1)]
            try:
                with transaction.atomic():
                    JobLogLine.objects.bulk_create(rows)
            except IntegrityError:
                self._seq = JobLogLine.objects.filter(job_id=self.job_id).aggregate(m=Max("seq"))["m"] or 0
                continue
            self._seq += len(rows)
            return rows
        raise RuntimeError(f"could not number log lines of job {self.job_id}")

    def state(self, **fields) -> None:
        """Persist job fields (status, progress…) and tell viewers that the job's state changed."""
        Job.objects.filter(pk=self.job_id).update(**fields)
        push(self.group, {"type": "job.state"})


class JobLogHandler(logging.Handler):
    """Routes library logging (torch, onnx, ultralytics…) from the job's thread into the job's log."""

    def __init__(self, log: JobLog, level=logging.INFO):
        super().__init__(level)
        self.log = log
        self.thread_id = threading.get_ident()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def filter(self, record):
        # Our own modules and the plumbing (db, celery, kombu) would echo or loop; other jobs' threads are not ours.
        return record.thread == self.thread_id and not record.name.startswith(
            ("projects.", "django", "celery", "kombu", "channels", "asyncio", "daphne")
        )

    def emit(self, record):
        try:
            self.log.write(self.format(record))
        except Exception:
            self.handleError(record)
