"""Job writes: enqueue, start the pipeline, start a catalog job, cancel, retry.

Execution is idempotent (see runner): a worker claims a job with a conditional UPDATE (queued → running, for one
attempt), so a broker redelivery of the same message finds nothing to claim and does no work twice.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..audit import audit_record
from ..models import Project
from .errors import JobNotAllowed, JobNotQueued
from .log import JobLog
from .models import ACTIVE_STATUSES, Job, JobStatus
from .registry import catalog_stage_exists, pipeline_stages, queue_phrase, stage_exists, stage_get
from .selectors import latest_jobs, pipeline_busy, stage_blockers

logger = logging.getLogger(__name__)

NOT_QUEUED = ("The job queue (the broker) is unreachable, so the job could not be queued; it was marked failed. "
              "Run it again once the broker is back.")


def job_enqueue(*, project, stage_key: str, user=None) -> Job:
    if not stage_exists(stage_key):
        raise JobNotAllowed(f"Unknown stage {stage_key!r}.")
    stage = stage_get(stage_key)
    with transaction.atomic():
        # Lock the project row so two clicks cannot queue the same stage twice.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if reasons := stage_blockers(project, stage_key):
            raise JobNotAllowed(" ".join(reasons))
        job = Job.objects.create(project=project, stage=stage_key, queue=stage.queue, requested_by=user)
        JobLog(job.pk).write(f"{stage.label} queued{_by(user)} {queue_phrase(stage.queue)}.")
        audit_record(actor=user, action="started", target=job, detail=stage.label)
        transaction.on_commit(lambda: _dispatch(job.pk, job.attempt, stage.queue))
    return job


def catalog_job_enqueue(*, stage_key: str, params: dict | None = None, user=None) -> Job:
    """Queue a job of a catalog stage (no project). Who may is the caller's check (projects.access: staff); one
    queued or running job per catalog stage, held by a database constraint, so two clicks cannot race."""
    if not catalog_stage_exists(stage_key):
        raise JobNotAllowed(f"Unknown catalog stage {stage_key!r}.")
    stage = stage_get(stage_key)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the refusal leaves the outer transaction usable
                job = Job.objects.create(project=None, stage=stage_key, queue=stage.queue, requested_by=user,
                                         params=params or {})
        except IntegrityError:
            raise JobNotAllowed(_catalog_busy(stage)) from None
        JobLog(job.pk).write(f"{stage.label} queued{_by(user)} {queue_phrase(stage.queue)}.")
        audit_record(actor=user, action="started", target=job, detail=stage.label)
        transaction.on_commit(lambda: _dispatch(job.pk, job.attempt, stage.queue))
    return job


def _catalog_busy(stage) -> str:
    active = Job.objects.filter(project__isnull=True, stage=stage.key, status__in=ACTIVE_STATUSES).first()
    status = active.status if active else "queued or running"
    return f"{stage.label} is already {status}" + (f" (job #{active.pk})." if active else ".")


def pipeline_start(*, project, user=None) -> Job:
    """Automatic mode: queue the first stage not yet done; each success queues the next. Refused while a job of
    the project is queued or running: a second run would race the first (the page's button is disabled then)."""
    latest = latest_jobs(project)
    if reason := pipeline_busy(latest):
        raise JobNotAllowed(reason)
    ordered = pipeline_stages()
    for stage in ordered:
        job = latest.get(stage.key)
        if job is None or job.status != JobStatus.SUCCEEDED:
            return job_enqueue(project=project, stage_key=stage.key, user=user)
    return job_enqueue(project=project, stage_key=ordered[0].key, user=user)  # all done: run it all again


def job_cancel(*, job: Job, user=None) -> Job:
    if job.status == JobStatus.QUEUED:
        _cancel_queued(job, user)
    elif job.status == JobStatus.RUNNING:
        # The running code stops at its next report; revoke alone would not stop a running task.
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        JobLog(job.pk).write(f"Cancellation requested{_by(user)}; the stage stops at its next step.")
    else:
        raise JobNotAllowed(f"The job is {job.status}; only queued or running jobs can be cancelled.")
    audit_record(actor=user, action="cancelled", target=job)
    job.refresh_from_db()
    return job


def _cancel_queued(job: Job, user) -> None:
    updated = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    if not updated:
        return  # a worker claimed it meanwhile: it runs, and a second cancel asks it to stop
    log = JobLog(job.pk)
    log.write(f"Cancelled{_by(user)} before it started.")
    log.state()
    if job.celery_task_id:
        from .tasks import run_job

        run_job.app.control.revoke(job.celery_task_id)


def job_retry(*, job: Job, user=None) -> Job:
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobNotAllowed(f"The job is {job.status}; only failed or cancelled jobs can be retried.")
    with transaction.atomic():
        attempt = job.attempt + 1
        try:
            with transaction.atomic():
                updated = Job.objects.filter(pk=job.pk, attempt=job.attempt, status=job.status).update(
                    status=JobStatus.QUEUED, attempt=attempt, progress=0, progress_message="", error="",
                    cancel_requested=False, started_at=None, finished_at=None, heartbeat_at=None, worker_host="",
                )
        except IntegrityError:  # a catalog stage with another job queued or running
            raise JobNotAllowed(_catalog_busy(stage_get(job.stage))) from None
        if not updated:
            raise JobNotAllowed("The job changed meanwhile; reload and try again.")
        JobLog(job.pk).write(f"── Retry{_by(user)}: attempt {attempt} ──")
        audit_record(actor=user, action="started", target=job, detail=f"retry, attempt {attempt}")
        transaction.on_commit(lambda: _dispatch(job.pk, attempt, job.queue))
    job.refresh_from_db()
    return job


def _by(user) -> str:
    return f" by {user}" if user else ""


def _dispatch(job_id: int, attempt: int, queue: str) -> None:
    """Hand the job to Celery. If the broker refuses it, the job fails now with a clear message: left queued, no
    worker would ever take it, and the stage could never be run again (its queued job blocks it)."""
    from .tasks import run_job  # Celery's task module imports the runner: loaded on first dispatch only

    # When it was sent: the reaper gives a worker time to take it before it looks for a lost message.
    Job.objects.filter(pk=job_id, attempt=attempt).update(dispatched_at=timezone.now())
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
