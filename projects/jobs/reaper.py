"""Fail running jobs whose heartbeat stopped: their worker process or host died.

Run by Celery beat (CELERY_BEAT_SCHEDULE, every TANGO_REAP_INTERVAL_SECONDS), never from a viewer's request or
websocket: how often it runs must not depend on who is watching.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .log import JobLog
from .models import Job, JobStatus


def jobs_reap_stale() -> int:
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
