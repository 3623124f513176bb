"""Celery tasks: thin wrappers that take ids and call one service. The names are stable: queued messages and the
beat schedule (settings.CELERY_BEAT_SCHEDULE) refer to them."""

from celery import shared_task

from . import workers  # noqa: F401  (a worker's heartbeat rows: connected to the worker's ready and shutdown)
from .reaper import jobs_reap_stale
from .runner import job_execute


@shared_task(name="projects.tasks.run_job")
def run_job(job_id: int, attempt: int) -> None:
    job_execute(job_id=job_id, attempt=attempt)


@shared_task(name="projects.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return jobs_reap_stale()
