"""Across processes, a training job is cancelled and resumed from its checkpoint, and a job whose worker is
killed ends failed within a bounded time and can be retried."""

import time

import pytest

from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.services import job_cancel, job_enqueue, job_retry
from projects.tests import factories
from projects.tests.live import start_worker
from training.models import TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status(job) -> str:
    return Job.objects.get(pk=job.pk).status


def has_line(job, prefix) -> bool:
    return JobLogLine.objects.filter(job=job, text__startswith=prefix).exists()


def recommended_project(epochs):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=epochs)
    recommend = job_enqueue(project=project, stage_key="recommend")
    wait_for(lambda: status(recommend) == JobStatus.SUCCEEDED, 60, "the recommendation")
    return project


def test_a_cancelled_training_resumes_from_its_checkpoint_on_retry(portal):
    project = recommended_project(epochs=4)
    job = job_enqueue(project=project, stage_key="train")
    wait_for(lambda: has_line(job, "epoch 2/4 "), 120, "the second epoch")
    job_cancel(job=Job.objects.get(pk=job.pk))
    wait_for(lambda: status(job) == JobStatus.CANCELLED, 60, "the cancellation")

    job_retry(job=Job.objects.get(pk=job.pk))
    try:
        wait_for(lambda: status(job) == JobStatus.SUCCEEDED, 180, "the resumed run")
    except AssertionError:
        print("LINES", list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True)))
        print("JOB", Job.objects.filter(pk=job.pk).values().first())
        print("WORKER", portal["worker"].output()[-4000:])
        raise
    assert has_line(job, "resuming after epoch")
    history = TrainingRun.objects.get(job=job).history
    assert [record["epoch"] for record in history] == [1, 2, 3, 4], "every epoch once"


def test_a_killed_workers_job_is_failed_by_the_reaper_and_can_be_retried(portal, tmp_path):
    portal["worker"].kill()  # only the worker under test consumes the queues now
    doomed = start_worker(tmp_path, beat=True, TANGO_REAP_INTERVAL_SECONDS="1")
    project = recommended_project(epochs=200)
    job = job_enqueue(project=project, stage_key="train")
    wait_for(lambda: has_line(job, "epoch 1/200"), 120, "training to start")

    doomed.kill()  # SIGKILL to the whole process group: the worker host is gone
    survivor = start_worker(tmp_path, beat=True, TANGO_REAP_INTERVAL_SECONDS="1")
    try:
        started = time.monotonic()
        wait_for(lambda: status(job) == JobStatus.FAILED, 30, "the reaper")
        assert time.monotonic() - started < 30
        assert has_line(job, "Worker ") and "stopped answering" in Job.objects.get(pk=job.pk).error

        job_retry(job=Job.objects.get(pk=job.pk))
        wait_for(lambda: has_line(job, "resuming after epoch") or has_line(job, "epoch 2/200"), 120,
                 "the retry to run")
        job_cancel(job=Job.objects.get(pk=job.pk))
        wait_for(lambda: status(job) == JobStatus.CANCELLED, 60, "the cancellation")
    finally:
        survivor.kill()
