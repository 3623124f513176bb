"""The worker side: claim a job, run its stage with a report callback, finish it (and in automatic mode queue the
next stage)."""

import logging
import socket
import threading
import time
import traceback

from django.db import close_old_connections, transaction
from django.utils import timezone

from tango_common.durations import about

from ..models import RunMode
from .errors import JobCancelled, JobNotAllowed, StageError, user_text
from .heartbeat import Heartbeat
from .log import JobLog, JobLogHandler
from .models import Job, JobStatus
from .registry import stage_get, stage_next
from .services import job_enqueue
from .storage import storage_problem

logger = logging.getLogger(__name__)


class JobReporter:
    """The `report(line, progress=None)` callback handed to Django-free code.

    It writes lines, throttles progress writes, and raises JobCancelled once cancellation was requested, so
    any code that reports regularly can be stopped between two steps.
    """

    PROGRESS_MIN_INTERVAL = 0.25  # seconds between progress writes: a loop may report every batch
    # The ETA is this attempt's own pace so far: said once the job has run this long and moved this far.
    ETA_AFTER_SECONDS, ETA_AFTER_PROGRESS = 5.0, 1.0

    def __init__(self, job: Job, log: JobLog):
        self.job = job
        self.log = log
        self.cancelled = threading.Event()
        self._last_progress_at = 0.0
        self._last_progress = None
        self._first_progress: tuple[float, float] | None = None  # (when, progress) of this attempt's first report

    def __call__(self, line: str | None = None, progress: float | None = None, message: str | None = None):
        if self.cancelled.is_set():
            raise JobCancelled()
        if line is not None:
            self.log.write(line)
        if progress is not None:
            self.set_progress(progress, message)

    def publish_result(self, result: dict) -> None:
        """Show a stage's partial result while it runs (e.g. training curves after each epoch)."""
        self.log.state(result=result)

    def set_progress(self, progress: float, message: str | None = None, force: bool = False):
        progress = max(0.0, min(100.0, float(progress)))
        now = time.monotonic()
        if message is None:
            message = self._time_left(progress, now)
        if not force and progress < 100 and now - self._last_progress_at < self.PROGRESS_MIN_INTERVAL:
            return
        if (progress, message) == self._last_progress:
            return
        self._last_progress_at, self._last_progress = now, (progress, message)
        fields = {"progress": round(progress, 1)}
        if message is not None:
            fields["progress_message"] = message[:200]
        self.log.state(**fields)


    def _time_left(self, progress: float, now: float) -> str:
        """'about 12 min left' at the pace since this attempt's first report (a resumed run starts part way)."""
        if self._first_progress is None:
            self._first_progress = (now, progress)
        started_at, started_from = self._first_progress
        elapsed, moved = now - started_at, progress - started_from
        if progress >= 100 or elapsed < self.ETA_AFTER_SECONDS or moved < self.ETA_AFTER_PROGRESS:
            return ""
        return f"{about(elapsed * (100 - progress) / moved)} left"


def job_execute(*, job_id: int, attempt: int) -> None:
    close_old_connections()
    if not _claim(job_id, attempt):
        logger.info("job %s attempt %s is not queued any more; nothing to do", job_id, attempt)
        return
    job = Job.objects.select_related("project").get(pk=job_id)
    stage = stage_get(job.stage)
    log = JobLog(job.pk)
    log.state()
    report = JobReporter(job, log)
    heartbeat = Heartbeat(job.pk, attempt, report.cancelled)
    handler = JobLogHandler(log)
    root = logging.getLogger()
    root.addHandler(handler)
    heartbeat.start()
    log.write(f"{stage.label} started on {job.worker_host} (attempt {attempt}).")
    try:
        result = stage.run(job, report) or {}
    except JobCancelled:
        _finish(job, attempt, log, JobStatus.CANCELLED, "Cancelled.")
    except StageError as exc:  # a failure the stage explains: its message, no traceback
        text = user_text(str(exc))
        _finish(job, attempt, log, JobStatus.FAILED, f"{stage.label} failed: {text}", error=text, result=exc.result)
    except Exception as exc:
        logger.exception("job %s (%s) failed", job.pk, job.stage)  # the server's log keeps the real paths
        if problem := storage_problem(exc):  # the administrator's to fix, said as such: no traceback
            text = (f"{problem[0].upper()}{problem[1:]}, so this stage could not write its files. Tell an "
                    "administrator, then retry.")
            _finish(job, attempt, log, JobStatus.FAILED, f"{stage.label} failed: {text}", error=text)
            return
        log.write(user_text(traceback.format_exc().rstrip()))
        text = user_text(str(exc) or repr(exc))
        _finish(job, attempt, log, JobStatus.FAILED, f"{type(exc).__name__}: {text}", error=text)
    else:
        _finish(job, attempt, log, JobStatus.SUCCEEDED, f"{stage.label} succeeded.", result=result)
    finally:
        heartbeat.stop()
        root.removeHandler(handler)


def _claim(job_id: int, attempt: int) -> bool:
    now = timezone.now()
    return bool(Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker_host=socket.gethostname()
    ))


def _finish(job: Job, attempt: int, log: JobLog, status: str, line: str, *, error: str = "", result=None):
    # progress_message holds the time left while the job runs (JobReporter): nothing is left once it has ended.
    fields = {"status": status, "finished_at": timezone.now(), "error": error[:5000], "progress_message": ""}
    if result is not None:
        fields["result"] = result
    if status == JobStatus.SUCCEEDED:
        fields["progress"] = 100
    with transaction.atomic():
        # Only the attempt that claimed the job may finish it (a reaped or retried job is not ours any more). The
        # closing line is written in the same transaction: a worker killed here leaves neither, and the reaper fails
        # the job; never a console that says "succeeded." over a job that did not.
        done = Job.objects.filter(pk=job.pk, attempt=attempt, status=JobStatus.RUNNING).update(**fields)
        if done:
            log.write(line)
            if status == JobStatus.SUCCEEDED and _automatic(job):
                _queue_next(job, log)
    if not done:
        now = Job.objects.filter(pk=job.pk).values("status", "attempt").first() or {}
        log.write(f"Attempt {attempt} ended ({line}) after the job had been marked {now.get('status', 'deleted')} "
                  f"(attempt {now.get('attempt', '?')}), so its outcome is not recorded.")
    log.state()


def _automatic(job: Job) -> bool:
    """The project runs its pipeline by itself (a catalog job has no pipeline to continue)."""
    return job.project is not None and job.project.run_mode == RunMode.AUTO


def _queue_next(job: Job, log: JobLog) -> None:
    following = stage_next(job.stage)
    if following is None:
        return
    try:
        job_enqueue(project=job.project, stage_key=following.key, user=job.requested_by)
    except JobNotAllowed as exc:
        log.write(f"Automatic mode could not queue {following.label}: {exc}")
