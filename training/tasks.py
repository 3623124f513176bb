"""Celery tasks of the training app: thin wrappers that take ids and call one service."""

from celery import shared_task


@shared_task(name="training.tasks.hpo_helper")
def hpo_helper(job_id: int, attempt: int) -> None:
    """A second (third, …) worker's share of a running hyperparameter search: trials of the same study."""
    from .automl import hpo_helper_run

    hpo_helper_run(job_id=job_id, attempt=attempt)
