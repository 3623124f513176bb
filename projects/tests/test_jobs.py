"""The job machinery in one process: claim, finish, cancel, retry, reap, automatic mode."""

import contextlib
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from projects.jobs import services as job_services
from projects.jobs.errors import JobNotAllowed
from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.reaper import jobs_reap_stale
from projects.jobs.registry import stage_overridden
from projects.jobs.runner import job_execute
from projects.jobs.services import job_cancel, job_enqueue, job_retry
from projects.models import RunMode
from projects.tests import factories, stage_doubles

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dispatched(monkeypatch):
    """Capture what would go to Celery instead of sending it."""
    sent = []
    monkeypatch.setattr(job_services, "_dispatch", lambda job_id, attempt, queue: sent.append((job_id, attempt, queue)))
    return sent


@pytest.fixture
def stage_runner():
    with contextlib.ExitStack() as stack:
        def use(runner_name: str, stage: str = "recommend"):
            stack.enter_context(stage_overridden(stage, runner=f"projects.tests.stage_doubles.{runner_name}"))

        yield use


@pytest.fixture
def project():
    team = factories.team_with("Vision", alice="owner")
    return factories.project(team)


def lines(job):
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("seq", "text"))


def test_a_stage_cannot_start_before_the_stages_it_needs(project, dispatched):
    with pytest.raises(JobNotAllowed, match="Run Recommend first"):
        job_enqueue(project=project, stage_key="train")
    assert dispatched == []


def test_enqueue_dispatches_after_commit_on_the_stage_queue(project, dispatched):
    job = job_enqueue(project=project, stage_key="recommend")
    assert dispatched == [(job.pk, 1, "cpu")]
    assert job.status == JobStatus.QUEUED
    with pytest.raises(JobNotAllowed, match="already queued"):
        job_enqueue(project=project, stage_key="recommend")


def test_executing_a_job_records_lines_progress_result_and_library_logs(project, dispatched, stage_runner):
    stage_runner("counting_stage")
    stage_doubles.calls.clear()
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"answer": 42}
    assert job.progress == 100 and job.started_at and job.finished_at and job.worker_host
    texts = [text for _, text in lines(job)]
    assert "working <on> it & more" in texts
    assert "some.library: a library speaks" in texts
    assert texts[-1] == "Recommend succeeded."
    assert [seq for seq, _ in lines(job)] == list(range(1, len(texts) + 1))


def test_a_running_job_says_how_long_is_left_at_its_own_pace(project, dispatched, stage_runner):
    stage_runner("paced_stage")
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    said = job.result["said"]
    assert said[0] == "", "no guess before the job has shown its pace"
    # 10% a second: at 70%, six seconds after the first report at 10%, about 3 s are left.
    assert said[-1] == "about 5 s left", said
    assert job.progress == 100 and job.progress_message == "", "a finished job has nothing left"


def test_a_redelivered_message_does_not_run_the_work_twice(project, dispatched, stage_runner):
    stage_runner("counting_stage")
    stage_doubles.calls.clear()
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    job_execute(job_id=job.pk, attempt=1)
    assert stage_doubles.calls == [job.pk]


def test_a_failure_is_recorded_with_its_traceback_and_can_be_retried(project, dispatched, stage_runner):
    stage_runner("failing_stage")
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "boom: the disk is full"
    assert any("Traceback" in text for _, text in lines(job))

    stage_runner("counting_stage")
    job = job_retry(job=job)
    assert job.status == JobStatus.QUEUED and job.attempt == 2
    assert dispatched[-1] == (job.pk, 2, "cpu")
    job_execute(job_id=job.pk, attempt=1)  # the first attempt's message, redelivered: ignored
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    job_execute(job_id=job.pk, attempt=2)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    seqs = [seq for seq, _ in lines(job)]
    assert seqs == list(range(1, len(seqs) + 1)), "numbering continues across attempts"


def test_cancelling_a_queued_job_means_it_never_runs(project, dispatched, stage_runner):
    stage_runner("counting_stage")
    stage_doubles.calls.clear()
    job = job_enqueue(project=project, stage_key="recommend")
    job_cancel(job=job)
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert stage_doubles.calls == []


def _run_in_thread(job):
    thread = threading.Thread(target=job_execute, kwargs={"job_id": job.pk, "attempt": job.attempt})
    thread.start()
    return thread


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_cancelling_a_running_job_stops_it_at_its_next_report(project, dispatched, stage_runner, settings):
    settings.TANGO_JOB_HEARTBEAT_SECONDS = 0.1
    stage_runner("looping_stage")
    job = job_enqueue(project=project, stage_key="recommend")
    thread = _run_in_thread(job)
    assert _wait_for(lambda: JobLogLine.objects.filter(job=job, text="step 3").exists())
    job_cancel(job=Job.objects.get(pk=job.pk))
    thread.join(timeout=10)
    job.refresh_from_db()
    assert not thread.is_alive()
    assert job.status == JobStatus.CANCELLED
    assert lines(job)[-1][1] == "Cancelled."


def test_a_stage_that_does_not_report_is_still_stopped_at_its_next_report(project, dispatched, stage_runner, settings):
    settings.TANGO_JOB_HEARTBEAT_SECONDS = 0.1
    stage_runner("silent_stage")
    stage_doubles.release.clear()
    job = job_enqueue(project=project, stage_key="recommend")
    thread = _run_in_thread(job)
    assert _wait_for(lambda: JobLogLine.objects.filter(job=job, text="compiling").exists())
    job_cancel(job=Job.objects.get(pk=job.pk))
    # The heartbeat notices the request while the stage is silent: wait for exactly that, not for a guessed time.
    assert _wait_for(lambda: stage_doubles.reporters[job.pk].cancelled.is_set())
    stage_doubles.release.set()
    thread.join(timeout=10)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert "done compiling" not in [text for _, text in lines(job)]


def test_a_job_whose_heartbeat_stopped_is_failed_by_the_reaper(project, dispatched, settings):
    settings.TANGO_JOB_STALE_SECONDS = 5
    job = job_enqueue(project=project, stage_key="recommend")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_host="gone-host",
                                          heartbeat_at=timezone.now() - timedelta(seconds=6))
    assert jobs_reap_stale() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "gone-host stopped answering" in lines(job)[-1][1]
    assert jobs_reap_stale() == 0
    assert job_retry(job=job).status == JobStatus.QUEUED


def test_automatic_mode_queues_the_next_stage_after_a_success(project, dispatched, stage_runner):
    project.run_mode = RunMode.AUTO
    project.save()
    stage_runner("counting_stage")
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    train = Job.objects.get(project=project, stage="train")
    assert train.status == JobStatus.QUEUED
    assert dispatched[-1] == (train.pk, 1, "gpu")


def test_step_mode_does_not_queue_the_next_stage(project, dispatched, stage_runner):
    stage_runner("counting_stage")
    job = job_enqueue(project=project, stage_key="recommend")
    job_execute(job_id=job.pk, attempt=1)
    assert not Job.objects.filter(project=project, stage="train").exists()

