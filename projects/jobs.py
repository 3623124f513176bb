"""Job services: enqueue, execute, cancel, retry, and reap jobs whose worker died.

Execution is idempotent: a worker claims a job with a conditional UPDATE (queued → running, for one attempt), so
a broker redelivery of the same message finds nothing to claim and does no work twice.
"""

import logging
import socket
import threading
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .audit import audit_record
from .joblog import JobLog, JobLogHandler
from .models import ACTIVE_STATUSES, Job, JobStatus, Project, RunMode
from .stages import STAGE_BY_KEY, STAGES, next_stage

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a running stage, at its next report, once cancellation was requested."""


class JobNotAllowed(Exception):
    """The stage cannot run now; the message says why."""


class StageError(Exception):
    """A stage cannot do its work; the message tells the user why and what to do."""


class JobNotQueued(Exception):
    """The broker did not take the job; it was marked failed and the message says so (the API answers 503)."""


NOT_QUEUED = ("The job queue (the broker) is unreachable, so the job could not be queued; it was marked failed. "
              "Run it again once the broker is back.")


# --- reads ---------------------------------------------------------------------------------------------------


def latest_jobs(project: Project) -> dict[str, Job]:
    """The newest job of each stage."""
    latest: dict[str, Job] = {}
    for job in project.jobs.order_by("-created_at", "-id"):
        latest.setdefault(job.stage, job)
    return latest


def latest_succeeded(project: Project, stage: str) -> Job:
    """The newest successful job of a stage: what a later stage builds on."""
    job = project.jobs.filter(stage=stage, status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()
    if job is None:
        raise StageError(f"No successful {stage} job: run that stage first.")
    return job


def stage_blockers(project: Project, stage_key: str, latest: dict[str, Job] | None = None) -> list[str]:
    """Why the stage cannot be started now (empty when it can)."""
    latest = latest_jobs(project) if latest is None else latest
    stage = STAGE_BY_KEY[stage_key]
    reasons = []
    current = latest.get(stage_key)
    if current and current.is_active:
        reasons.append(f"{stage.label} is already {current.status}.")
    for need in stage.requires:
        job = latest.get(need)
        if job is None or job.status != JobStatus.SUCCEEDED:
            reasons.append(f"Run {STAGE_BY_KEY[need].label} first.")
    return reasons


# --- writes --------------------------------------------------------------------------------------------------


def job_enqueue(*, project: Project, stage_key: str, user=None) -> Job:
    if stage_key not in STAGE_BY_KEY:
        raise JobNotAllowed(f"Unknown stage {stage_key!r}.")
    with transaction.atomic():
        # Lock the project row so two clicks cannot queue the same stage twice.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if reasons := stage_blockers(project, stage_key):
            raise JobNotAllowed(" ".join(reasons))
        stage = STAGE_BY_KEY[stage_key]
        job = Job.objects.create(project=project, stage=stage_key, queue=stage.queue, requested_by=user)
        who = f" by {user}" if user else ""
        JobLog(job.pk).write(f"{stage.label} queued{who} on the '{stage.queue}' queue.")
        audit_record(actor=user, action="started", target=job, detail=stage.label)
        transaction.on_commit(lambda: _dispatch(job.pk, job.attempt, stage.queue))
    return job


def pipeline_start(*, project: Project, user=None) -> Job:
    """Automatic mode: queue the first stage not yet done; each success queues the next."""
    latest = latest_jobs(project)
    for stage in STAGES:
        job = latest.get(stage.key)
        if job is None or job.status != JobStatus.SUCCEEDED:
            return job_enqueue(project=project, stage_key=stage.key, user=user)
    return job_enqueue(project=project, stage_key=STAGES[0].key, user=user)  # all done: run it all again


def job_cancel(*, job: Job, user=None) -> Job:
    log = JobLog(job.pk)
    who = f" by {user}" if user else ""
    if job.status == JobStatus.QUEUED:
        updated = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
        )
        if updated:
            log.write(f"Cancelled{who} before it started.")
            log.state()
            if job.celery_task_id:
                from tango_site.celery import app

                app.control.revoke(job.celery_task_id)
    elif job.status == JobStatus.RUNNING:
        # The running code stops at its next report; revoke alone would not stop a running task.
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        log.write(f"Cancellation requested{who}; the stage stops at its next step.")
    else:
        raise JobNotAllowed(f"The job is {job.status}; only queued or running jobs can be cancelled.")
    audit_record(actor=user, action="cancelled", target=job)
    job.refresh_from_db()
    return job


def job_retry(*, job: Job, user=None) -> Job:
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobNotAllowed(f"The job is {job.status}; only failed or cancelled jobs can be retried.")
    with transaction.atomic():
        attempt = job.attempt + 1
        updated = Job.objects.filter(pk=job.pk, attempt=job.attempt, status=job.status).update(
            status=JobStatus.QUEUED, attempt=attempt, progress=0, progress_message="", error="",
            cancel_requested=False, started_at=None, finished_at=None, heartbeat_at=None, worker_host="",
        )
        if not updated:
            raise JobNotAllowed("The job changed meanwhile; reload and try again.")
        who = f" by {user}" if user else ""
        JobLog(job.pk).write(f"── Retry{who}: attempt {attempt} ──")
        audit_record(actor=user, action="started", target=job, detail=f"retry, attempt {attempt}")
        transaction.on_commit(lambda: _dispatch(job.pk, attempt, job.queue))
    job.refresh_from_db()
    return job


def _dispatch(job_id: int, attempt: int, queue: str) -> None:
    """Hand the job to Celery. If the broker refuses it, the job fails now with a clear message: left queued, no
    worker would ever take it, and the stage could never be run again (its queued job blocks it)."""
    from .tasks import run_job

    try:
        result = run_job.apply_async(args=[job_id, attempt], queue=queue)
    except Exception as exc:  # kombu's OperationalError, a refused connection, a full disk under the broker…
        logger.error("could not queue job %s: %s", job_id, exc)
        _fail_undispatched(job_id, attempt)
        raise JobNotQueued(NOT_QUEUED) from exc
    Job.objects.filter(pk=job_id, attempt=attempt).update(celery_task_id=result.id)


def _fail_undispatched(job_id: int, attempt: int) -> None:
    updated = Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, finished_at=timezone.now(), error=NOT_QUEUED)
    if updated:
        log = JobLog(job_id)
        log.write(NOT_QUEUED)
        log.state()


# --- execution (worker side) ---------------------------------------------------------------------------------


class JobReporter:
    """The `report(line, progress=None)` callback handed to Django-free code.

    It writes lines, throttles progress writes, and raises JobCancelled once cancellation was requested, so
    any code that reports regularly can be stopped between two steps.
    """

    PROGRESS_MIN_INTERVAL = 0.25  # seconds between progress writes: a loop may report every batch

    def __init__(self, job: Job, log: JobLog):
        self.job = job
        self.log = log
        self.cancelled = threading.Event()
        self._last_progress_at = 0.0
        self._last_progress = None

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
        if not force and progress < 100 and now - self._last_progress_at < self.PROGRESS_MIN_INTERVAL:
            return
        if (progress, message) == self._last_progress:
            return
        self._last_progress_at, self._last_progress = now, (progress, message)
        fields = {"progress": round(progress, 1)}
        if message is not None:
            fields["progress_message"] = message[:200]
        self.log.state(**fields)


class _Heartbeat(threading.Thread):
    """Marks the job alive and notices cancellation while the stage runs, even between two reports."""

    def __init__(self, job_id: int, attempt: int, cancelled: threading.Event):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.attempt, self.cancelled = job_id, attempt, cancelled
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(settings.TANGO_JOB_HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, attempt=self.attempt).update(heartbeat_at=timezone.now())
                if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
                    self.cancelled.set()
        finally:
            connection.close()


def job_execute(*, job_id: int, attempt: int) -> None:
    close_old_connections()
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker_host=socket.gethostname()
    )
    if not claimed:
        logger.info("job %s attempt %s is not queued any more; nothing to do", job_id, attempt)
        return
    job = Job.objects.select_related("project").get(pk=job_id)
    stage = STAGE_BY_KEY[job.stage]
    log = JobLog(job.pk)
    log.state()
    report = JobReporter(job, log)
    heartbeat = _Heartbeat(job.pk, attempt, report.cancelled)
    handler = JobLogHandler(log)
    root = logging.getLogger()
    root.addHandler(handler)
    heartbeat.start()
    log.write(f"{stage.label} started on {job.worker_host} (attempt {attempt}).")
    try:
        result = stage.run(job, report) or {}
    except JobCancelled:
        _finish(job, attempt, log, JobStatus.CANCELLED, "Cancelled.")
    except Exception as exc:
        log.write(traceback.format_exc().rstrip())
        _finish(job, attempt, log, JobStatus.FAILED, f"{type(exc).__name__}: {exc}", error=str(exc) or repr(exc))
    else:
        _finish(job, attempt, log, JobStatus.SUCCEEDED, f"{stage.label} succeeded.", result=result)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        root.removeHandler(handler)


def _finish(job: Job, attempt: int, log: JobLog, status: str, line: str, *, error: str = "", result=None):
    fields = {"status": status, "finished_at": timezone.now(), "error": error[:5000]}
    if result is not None:
        fields["result"] = result
    if status == JobStatus.SUCCEEDED:
        fields["progress"] = 100
    log.write(line)
    with transaction.atomic():
        # Only the attempt that claimed the job may finish it (a reaped or retried job is not ours any more).
        done = Job.objects.filter(pk=job.pk, attempt=attempt, status=JobStatus.RUNNING).update(**fields)
        project = job.project
        following = next_stage(job.stage)
        if done and status == JobStatus.SUCCEEDED and project.run_mode == RunMode.AUTO and following:
            try:
                job_enqueue(project=project, stage_key=following.key, user=job.requested_by)
            except JobNotAllowed as exc:
                log.write(f"Automatic mode could not queue {following.label}: {exc}")
    log.state()


def jobs_reap_stale() -> int:
    """Fail running jobs whose heartbeat stopped: their worker process or host died."""
    limit = settings.TANGO_JOB_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=limit)
    reaped = 0
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        updated = Job.objects.filter(pk=job.pk, attempt=job.attempt, status=JobStatus.RUNNING,
                                     heartbeat_at__lt=cutoff).update(
            status=JobStatus.FAILED, finished_at=timezone.now(),
            error=f"Worker {job.worker_host or '?'} stopped answering.",
        )
        if updated:
            reaped += 1
            log = JobLog(job.pk)
            log.write(f"Worker {job.worker_host or '?'} stopped answering (no heartbeat for {limit:.0f} s); "
                      "the job is marked failed. Retry to run it again.")
            log.state()
    return reaped


def active_job_exists(project: Project) -> bool:
    return project.jobs.filter(status__in=ACTIVE_STATUSES).exists()
