"""Across processes, a training job is cancelled and resumed from its checkpoint, and a job whose worker is
killed ends failed within a bounded time and can be retried.

These tests share two cores with everything else a CI machine runs, so every wait is generous but bounded: each
has its own limit, the test as a whole has one (pytest-timeout, above the sum of its waits), and a wait that runs
out says what it waited for and shows the job's console and the worker's output."""

import time

import pytest

from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.services import job_cancel, job_enqueue, job_retry
from projects.tests import factories
from projects.tests.live import start_worker
from training.models import TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout, what, job=None, worker=None):
    """Poll predicate (a database read) gently — 0.1 s, then longer pauses up to 1 s — until it holds or timeout."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while not predicate():
        if time.monotonic() >= deadline:
            details = ""
            if job is not None:
                lines = JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True)
                details += f"\njob: {Job.objects.filter(pk=job.pk).values('status', 'error').first()}"
                details += "\nconsole (last 20 lines):\n" + "\n".join(list(lines)[-20:])
            if worker is not None:
                details += "\nworker output (end):\n" + worker.output()[-3000:]
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(pause)
        pause = min(1.0, pause * 1.5)


def status(job) -> str:
    return Job.objects.get(pk=job.pk).status


def has_line(job, prefix) -> bool:
    return JobLogLine.objects.filter(job=job, text__startswith=prefix).exists()


def recommended_project(epochs, worker):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=epochs)
    recommend = job_enqueue(project=project, stage_key="recommend")
    wait_for(lambda: status(recommend) == JobStatus.SUCCEEDED, 120, "the recommendation", recommend, worker)
    return project


@pytest.mark.timeout(900)  # above the sum of the waits below
def test_a_cancelled_training_resumes_from_its_checkpoint_on_retry(portal):
    worker = portal["worker"]
    project = recommended_project(epochs=4, worker=worker)
    job = job_enqueue(project=project, stage_key="train")
    wait_for(lambda: has_line(job, "epoch 2/4 "), 240, "the second epoch", job, worker)
    job_cancel(job=Job.objects.get(pk=job.pk))
    wait_for(lambda: status(job) == JobStatus.CANCELLED, 120, "the cancellation", job, worker)

    job_retry(job=Job.objects.get(pk=job.pk))
    wait_for(lambda: status(job) == JobStatus.SUCCEEDED, 300, "the resumed run", job, worker)
    assert has_line(job, "resuming after epoch")
    history = TrainingRun.objects.get(job=job).history
    assert [record["epoch"] for record in history] == [1, 2, 3, 4], "every epoch once"


@pytest.mark.timeout(900)
def test_a_killed_workers_job_is_failed_by_the_reaper_and_can_be_retried(portal, tmp_path):
    portal["worker"].kill()  # only the worker under test consumes the queues now
    doomed = start_worker(tmp_path, beat=True, TANGO_REAP_INTERVAL_SECONDS="1")
    project = recommended_project(epochs=200, worker=doomed)
    job = job_enqueue(project=project, stage_key="train")
    wait_for(lambda: has_line(job, "epoch 1/200"), 240, "training to start", job, doomed)

    doomed.kill()  # SIGKILL to the whole process group: the worker host is gone
    survivor = start_worker(tmp_path, beat=True, TANGO_REAP_INTERVAL_SECONDS="1")
    try:
        # The heartbeat goes stale after 4 s (live.child_env) and beat reaps every second: well under a minute
        # even on a busy machine.
        wait_for(lambda: status(job) == JobStatus.FAILED, 90, "the reaper", job, survivor)
        assert has_line(job, "Worker ") and "stopped answering" in Job.objects.get(pk=job.pk).error

        job_retry(job=Job.objects.get(pk=job.pk))
        wait_for(lambda: has_line(job, "resuming after epoch") or has_line(job, "epoch 2/200"), 240,
                 "the retry to run", job, survivor)
        job_cancel(job=Job.objects.get(pk=job.pk))
        wait_for(lambda: status(job) == JobStatus.CANCELLED, 120, "the cancellation", job, survivor)
    finally:
        survivor.kill()
