"""A stage's job run in the test's own process, as a worker would run it: for tests of what a stage does rather
than of the queue (with the `no_broker` fixture, conftest.py, so that enqueueing sends nothing to a broker)."""

from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue


def run_job(job: Job) -> Job:
    """Execute the job and insist it succeeded; a failure shows its error and the end of its log."""
    job_execute(job_id=job.pk, attempt=job.attempt)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error + "\n" + "\n".join(
        job.log_lines.order_by("-seq").values_list("text", flat=True)[:30])
    return job


def run_stage(project, stage: str) -> Job:
    return run_job(job_enqueue(project=project, stage_key=stage))
