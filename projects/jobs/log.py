"""The one log mechanism: every stage's console goes through JobLog.

A line is persisted with the next sequence number first, then pushed to the job's channel group. The push is
at-most-once, so viewers number what they got and refetch any gap from the database.
"""

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .models import Job, JobLogLine
from .selectors import log_last_seq

logger = logging.getLogger(__name__)
# Every job line is echoed here at DEBUG: `manage.py tango demo` turns it on to print the live log.
echo = logging.getLogger("projects.jobs.log.echo")

MAX_LINE_CHARS = 4000
PUSH_INTERVAL = 0.05  # seconds between two pushes to one job's viewers
PUSH_MAX_LINES = 500
PUSH_STALL = 0.1  # a writer waits for a push that has been pending this long (see JobLog._keep_up)


class _LoopThread:
    """One event loop per process for pushes from sync code (Celery tasks, views).

    async_to_sync would make a fresh loop per call, which channels-redis pools do not survive
    ("Event loop is closed"); a long-lived loop keeps one connection pool per process.

    Writers do not wait for their push, and a group gets at most one send per PUSH_INTERVAL: the first message
    goes at once, what comes during the send and the pause after it goes as one merged message. One group_send
    per line held a worker to ~85 lines/s and sent the web server one websocket frame per line per viewer
    (bench/log_stream.py); the pause adds at most PUSH_INTERVAL to a line's way to the viewers.
    """

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.pending: dict[str, list[dict]] = {}  # group -> messages not sent yet; only the loop thread touches it
        threading.Thread(target=self.loop.run_forever, name="joblog-push", daemon=True).start()
        atexit.register(self.drain)

    def submit(self, group: str, message: dict) -> concurrent.futures.Future:
        """Queue the message; the future is done once it was sent (or the send failed)."""
        sent = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._enqueue, group, (message, sent))
        return sent

    def _enqueue(self, group: str, item: tuple) -> None:
        if group in self.pending:
            self.pending[group].append(item)  # the group's sender is running and will take it
        else:
            self.pending[group] = [item]
            self.loop.create_task(self._sender(group))

    async def _sender(self, group: str) -> None:
        layer = get_channel_layer()
        while self.pending[group]:
            items, self.pending[group] = self.pending[group], []
            for message in _merged([message for message, _ in items]):
                try:
                    await layer.group_send(group, message)
                except Exception as exc:  # the database has the lines; viewers will catch up from it
                    logger.warning("push to %s failed: %s", group, exc)
            for _, sent in items:
                sent.set_result(None)
            await asyncio.sleep(PUSH_INTERVAL)
        del self.pending[group]

    def drain(self, timeout: float = 2.0) -> None:
        """At exit, give the last pushes a moment: a daemon thread would otherwise die with them."""
        deadline = time.monotonic() + timeout
        while self.pid == os.getpid() and self.pending and time.monotonic() < deadline:
            time.sleep(0.01)


def _merged(messages: list[dict]) -> list[dict]:
    """Consecutive line pushes become one (at most PUSH_MAX_LINES lines); the order of all messages is kept."""
    out: list[dict] = []
    for message in messages:
        last = out[-1] if out else None
        if (message["type"] == "log.lines" and last and last["type"] == "log.lines"
                and len(last["lines"]) < PUSH_MAX_LINES):
            last["lines"].extend(message["lines"])
        else:
            out.append({**message, "lines": list(message["lines"])} if message["type"] == "log.lines" else message)
    return out


_loop: _LoopThread | None = None
_loop_lock = threading.Lock()


def push(group: str, message: dict) -> concurrent.futures.Future | None:
    """Queue a send to a channel group when the layer crosses processes (Redis); it is at-most-once, and a lost
    push is repaired by readers."""
    if not settings.TANGO_LOG_PUSH:
        return None
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid():  # a forked worker child needs its own loop
            _loop = _LoopThread()
    return _loop.submit(group, message)


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


class JobLog:
    def __init__(self, job_id: int):
        self.job_id = job_id
        self.group = job_group(job_id)
        self._lock = threading.Lock()  # library threads may log while the stage writes
        self._seq = log_last_seq(job_id)
        self._unsent: tuple[concurrent.futures.Future, float] | None = None  # oldest push not sent yet, and when

    def write(self, text: str) -> None:
        lines = [line[:MAX_LINE_CHARS] for line in str(text).splitlines()] or [""]
        with self._lock:
            rows = self._persist(lines)
            if echo.isEnabledFor(logging.DEBUG):
                for row in rows:
                    echo.debug("[%s] %s", self.job_id, row.text)
            self._keep_up(push(self.group, {"type": "log.lines",
                                            "lines": [{"seq": r.seq, "text": r.text} for r in rows]}))

    def _keep_up(self, sent: concurrent.futures.Future | None) -> None:
        """Pushes go out from the loop thread, which needs the GIL for every step of a send. A writer that never
        pauses (a burst of lines) starved it: lines sat unsent for 300-600 ms (bench/log_stream.py). So when the
        oldest unsent push has waited over PUSH_STALL, wait for it: that hands the GIL over until it is out."""
        if sent is None:
            return
        if self._unsent and not self._unsent[0].done():
            if time.monotonic() - self._unsent[1] <= PUSH_STALL:
                return
            concurrent.futures.wait([self._unsent[0]], timeout=5)
        self._unsent = (sent, time.monotonic())

    def _persist(self, lines: list[str]) -> list[JobLogLine]:
        """Number and insert the lines. Another process may write to the same job (a cancel request, the reaper):
        the unique (job, seq) index then refuses our numbers, and we renumber after the latest line and retry."""
        skip_flush_wait = _may_skip_flush_wait()
        for _ in range(20):
            now = timezone.now()
            rows = [JobLogLine(job_id=self.job_id, seq=self._seq + i, text=line, created_at=now)
                    for i, line in enumerate(lines, start=1)]
            try:
                with transaction.atomic():
                    if skip_flush_wait:
                        _skip_flush_wait()
                    JobLogLine.objects.bulk_create(rows)
            except IntegrityError:
                self._seq = log_last_seq(self.job_id)
                continue
            self._seq += len(rows)
            return rows
        raise RuntimeError(f"could not number log lines of job {self.job_id}")

    def state(self, **fields) -> None:
        """Persist job fields (status, progress…) and tell viewers that the job's state changed."""
        Job.objects.filter(pk=self.job_id).update(**fields)
        push(self.group, {"type": "job.state"})


def _may_skip_flush_wait() -> bool:
    """On PostgreSQL, log lines commit without waiting for the WAL flush: that wait (~5 ms a line here) held a
    worker under 100 lines/s. A database crash may then drop the last fraction of a second of log lines, never
    corrupt them. Job fields keep synchronous commits, and so does an outer transaction a line is written in
    (SET LOCAL would reach all of it)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _skip_flush_wait() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


# A library's notice to its programmers ("`torch.jit.load` is deprecated"), which the Celery worker routes into
# logging as py.warnings: nothing the user can act on. Other warnings (UserWarning, RuntimeWarning) still show.
_NOTICES = ("DeprecationWarning: ", "PendingDeprecationWarning: ", "FutureWarning: ")


def _library_notice(record: logging.LogRecord) -> bool:
    return record.name == "py.warnings" and any(n in record.getMessage() for n in _NOTICES)


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
            ("projects.", "django", "celery", "kombu", "channels", "asyncio", "uvicorn")
        ) and not _library_notice(record)

    def emit(self, record):
        try:
            self.log.write(self.format(record))
        except Exception:
            self.handleError(record)
