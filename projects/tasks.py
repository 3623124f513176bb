"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from .jobs import job_execute, jobs_reap_stale


@shared_task(name="projects.tasks.run_job")
def run_job(job_id: int, attempt: int) -> None:
    job_execute(job_id=job_id, attempt=attempt)


@shared_task(name="projects.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return jobs_reap_stale()
