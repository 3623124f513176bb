"""Celery tasks of the deployment app: thin wrappers that take ids. The names are stable (queued messages use them)."""

from celery import shared_task

from .trials import trial_execute


@shared_task(name="deployment.tasks.run_trial")
def run_trial(trial_id: int) -> None:
    trial_execute(trial_id)
