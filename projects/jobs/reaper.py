"""Jobs whose worker is gone: fail the running ones, re-dispatch or fail the queued ones. Each decision is a line
in the job's console.

- A running job whose heartbeat stopped (its worker process or host died) is failed; Retry runs it again.
- A queued job whose message was lost with a dead worker (a worker takes a message before it claims the job, and a
  worker killed in between takes the message with it) is dispatched again once a live worker serves its queue. In
  embedded mode the broker says which messages wait (tango_site.broker.waiting_task_ids); with Redis it cannot, and
  a job sent before every live worker of its queue started is dispatched again. A copy that arrives as well finds
  the job claimed and does nothing (projects.jobs.runner claims with a conditional update).
- A queued job whose queue no live worker consumes gets a line saying so, and is failed after
  TANGO_JOB_UNSERVED_SECONDS, so that its stage can be run again.

Run by Celery beat in team mode (CELERY_BEAT_SCHEDULE) and by `tango serve`'s supervisor in embedded mode, every
TANGO_REAP_INTERVAL_SECONDS; never from a viewer's request or websocket: how often it runs must not depend on who is
watching.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from .errors import JobNotQueued
from .log import JobLog
from .models import Job, JobStatus
from .selectors import served_queues
from .workers import worker_rows_forget

logger = logging.getLogger(__name__)


def jobs_reap_stale() -> int:
    """Fail, re-dispatch or flag the jobs no live worker looks after; how many it failed or re-dispatched."""
    acted = _fail_running_without_heartbeat()
    acted += _tend_queued()
    worker_rows_forget()
    return acted


def _fail_running_without_heartbeat() -> int:
    limit = settings.TANGO_JOB_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=limit)
    reaped = 0
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        # Conditional on the same attempt and a still-stale heartbeat: a job that came back to life is kept.
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


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _tend_queued() -> int:
    now = timezone.now()
    grace = timedelta(seconds=settings.TANGO_JOB_STALE_SECONDS)  # a worker may not have polled a new job yet
    served = served_queues()
    waiting: dict[str, tuple[bool, set[str] | None]] = {}
    acted = 0
    for job in Job.objects.filter(status=JobStatus.QUEUED).order_by("pk"):
        sent = job.dispatched_at or job.created_at
        if now - sent < grace:
            continue
        if job.queue not in served:
            acted += _unserved(job, now)
            continue
        if job.unserved_since is not None:
            if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(unserved_since=None):
                JobLog(job.pk).write(f"A worker for the '{job.queue}' queue is running again; the job starts in "
                                     "its turn.")
        if job.queue not in waiting:
            waiting[job.queue] = _waiting_task_ids(job.queue)
        known, ids = waiting[job.queue]
        if not known:
            continue  # the broker could not be read this time
        if not Job.objects.filter(pk=job.pk, attempt=job.attempt, status=JobStatus.QUEUED).exists():
            continue  # claimed meanwhile (its message was taken before the broker was read)
        if ids is None:  # the broker cannot tell: lost if every live worker started after it was sent
            lost = sent < served[job.queue]
            why = (f"Every worker on the '{job.queue}' queue started after this job was queued, so the one that "
                   "took it may have stopped before starting it: queued again (a copy that also arrives is ignored).")
        else:
            lost = job.celery_task_id not in ids
            why = ("The worker that took this job stopped before starting it (its message is no longer in the "
                   "queue): queued again.")
        if lost:
            acted += _redispatch(job, why)
    return acted


def _unserved(job: Job, now) -> int:
    limit = settings.TANGO_JOB_UNSERVED_SECONDS
    if job.unserved_since is None:
        if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(unserved_since=now):
            JobLog(job.pk).write(
                f"No worker is running for the '{job.queue}' queue; the job starts when one is back (it is failed "
                f"if none comes within {_minutes(limit)}).")
        return 0
    if now - job.unserved_since < timedelta(seconds=limit):
        return 0
    message = (f"No worker took jobs from the '{job.queue}' queue for {_minutes(limit)}, so the job is marked "
               "failed and its stage can be run again. Start the worker (`./tango run` starts one; in team mode "
               f"`celery -A tango_site worker -Q {job.queue}`), then retry.")
    updated = Job.objects.filter(pk=job.pk, attempt=job.attempt, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, finished_at=now, error=message)
    if not updated:
        return 0
    log = JobLog(job.pk)
    log.write(message)
    log.state()
    return 1


def _redispatch(job: Job, why: str) -> int:
    from .services import _dispatch  # looked up when called: tests replace it

    JobLog(job.pk).write(why)
    logger.warning("job %s: %s", job.pk, why)
    try:
        _dispatch(job.pk, job.attempt, job.queue)
    except JobNotQueued:
        pass  # failed with the broker's message, in the job's console
    return 1


def _waiting_task_ids(queue: str) -> tuple[bool, set[str] | None]:
    """(whether the broker could be read, the ids of the tasks waiting in the queue or None when it cannot tell)."""
    inspect = settings.TANGO_BROKER_WAITING
    if not inspect:
        return True, None
    try:
        return True, import_string(inspect)(queue)
    except Exception as exc:  # the broker file locked for longer than its timeout: decide on the next run
        logger.warning("could not list the broker's waiting messages: %s", exc)
        return False, None
