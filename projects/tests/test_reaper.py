"""Queued jobs that no live worker will take (issue 9): the reaper says so in the job's console, fails the job when
no worker comes back in time (so its stage can run again), and dispatches again a job whose message died with its
worker. Workers announce themselves per queue; the project page and the API say when a queue has no worker."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from projects.jobs import services as job_services
from projects.jobs.models import Job, JobLogLine, JobStatus, WorkerHeartbeat
from projects.jobs.reaper import jobs_reap_stale
from projects.jobs.selectors import served_queues, stage_blockers
from projects.jobs.services import job_enqueue
from projects.jobs.workers import WorkerHeartbeatThread, worker_beat
from projects.tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

WAITING: dict[str, set[str]] = {}  # what the fake broker below holds, per queue


def broker_waiting(queue: str) -> set[str]:
    return WAITING.get(queue, set())


@pytest.fixture
def reaper_settings(settings):
    settings.TANGO_JOB_STALE_SECONDS = 5
    settings.TANGO_JOB_UNSERVED_SECONDS = 60
    settings.TANGO_BROKER_WAITING = "projects.tests.test_reaper.broker_waiting"
    WAITING.clear()
    return settings


@pytest.fixture
def dispatched(monkeypatch):
    sent = []

    def dispatch(job_id, attempt, queue):
        sent.append((job_id, attempt, queue))
        Job.objects.filter(pk=job_id).update(dispatched_at=timezone.now(), celery_task_id=f"task-{len(sent)}")

    monkeypatch.setattr(job_services, "_dispatch", dispatch)
    return sent


@pytest.fixture
def project():
    return factories.project(factories.team_with("Vision", alice="owner"))


def texts(job) -> list[str]:
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


def age(job, seconds: float) -> None:
    """Pretend the job was sent `seconds` ago."""
    Job.objects.filter(pk=job.pk).update(dispatched_at=timezone.now() - timedelta(seconds=seconds))


def a_worker(queues=("cpu", "gpu"), started_ago: float = 600, name="celery@host"):
    worker_beat(worker=name, queues=list(queues), pid=4242, started_at=timezone.now() - timedelta(seconds=started_ago))


def test_a_job_no_worker_takes_is_flagged_then_failed_and_its_stage_can_run_again(reaper_settings, dispatched,
                                                                                   project):
    job = job_enqueue(project=project, stage_key="recommend")
    assert jobs_reap_stale() == 0 and len(texts(job)) == 1, "just queued: the worker may not have polled yet"

    age(job, 10)
    assert jobs_reap_stale() == 0
    assert texts(job)[-1] == ("No worker is running for the 'cpu' queue; the job starts when one is back (it is "
                              "failed if none comes within 1 min).")
    jobs_reap_stale()
    assert len(texts(job)) == 2, "said once"
    assert stage_blockers(project, "recommend") == ["Recommend is already queued."]

    Job.objects.filter(pk=job.pk).update(unserved_since=timezone.now() - timedelta(seconds=61))
    assert jobs_reap_stale() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("No worker took jobs from the 'cpu' queue for 1 min, so the job is marked failed")
    assert texts(job)[-1] == job.error
    assert stage_blockers(project, "recommend") == [], "the stage is not stuck 'already queued'"
    assert job_enqueue(project=project, stage_key="recommend").status == JobStatus.QUEUED


def test_a_worker_coming_back_is_noted_and_the_waiting_job_kept(reaper_settings, dispatched, project):
    job = job_enqueue(project=project, stage_key="recommend")
    WAITING["cpu"] = {Job.objects.get(pk=job.pk).celery_task_id}  # its message waits in the broker
    age(job, 10)
    jobs_reap_stale()
    a_worker()
    assert jobs_reap_stale() == 0
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.unserved_since is None
    assert texts(job)[-1] == "A worker for the 'cpu' queue is running again; the job starts in its turn."
    assert len(dispatched) == 1, "its message is still in the broker: not sent twice"


def test_a_job_whose_message_died_with_its_worker_is_dispatched_again(reaper_settings, dispatched, project):
    a_worker(started_ago=2)  # the restarted worker; the one that took the message is gone
    job = job_enqueue(project=project, stage_key="recommend")
    age(job, 10)
    assert jobs_reap_stale() == 1
    assert dispatched == [(job.pk, 1, "cpu"), (job.pk, 1, "cpu")]
    assert texts(job)[-1] == ("The worker that took this job stopped before starting it (its message is no longer "
                              "in the queue): queued again.")
    WAITING["cpu"] = {Job.objects.get(pk=job.pk).celery_task_id}
    age(job, 10)
    assert jobs_reap_stale() == 0, "its new message waits: nothing more to do"


def test_without_a_broker_to_ask_a_job_sent_before_every_live_worker_started_is_sent_again(reaper_settings,
                                                                                              dispatched, project):
    reaper_settings.TANGO_BROKER_WAITING = ""  # Redis: the reaper cannot list the waiting messages
    a_worker(started_ago=600)
    waiting = job_enqueue(project=project, stage_key="recommend")
    age(waiting, 30)  # sent after the live worker started: it waits its turn
    assert jobs_reap_stale() == 0

    WorkerHeartbeat.objects.all().delete()
    a_worker(started_ago=10)  # every live worker started after the job was sent
    assert jobs_reap_stale() == 1
    assert texts(waiting)[-1].startswith("Every worker on the 'cpu' queue started after this job was queued")


def test_a_worker_announces_its_queues_while_it_runs_and_withdraws_them_when_it_stops(reaper_settings):
    reaper_settings.TANGO_JOB_HEARTBEAT_SECONDS = 0.05
    thread = WorkerHeartbeatThread("celery@test", ["cpu", "gpu"])
    thread.start()
    try:
        deadline = timezone.now() + timedelta(seconds=20)
        while set(served_queues()) != {"cpu", "gpu"} and timezone.now() < deadline:
            thread.stopped.wait(0.05)
        assert set(served_queues()) == {"cpu", "gpu"}
        assert set(WorkerHeartbeat.objects.values_list("worker", "queue")) == {("celery@test", "cpu"),
                                                                               ("celery@test", "gpu")}
    finally:
        thread.stop()
    assert not WorkerHeartbeat.objects.exists()


def test_a_stale_heartbeat_is_a_worker_that_is_gone(reaper_settings):
    a_worker(queues=("cpu",))
    assert set(served_queues()) == {"cpu"}
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=6))
    assert served_queues() == {}


def test_the_project_page_and_the_api_say_when_no_worker_is_running(reaper_settings, client, project):
    owner = project.team.members.get()
    client.force_login(owner)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert "The worker is not running; jobs will start when it is back." in page
    api = client.get(f"/api/projects/{project.pk}/").json()
    assert {stage["key"]: stage["worker_running"] for stage in api["stages"]}["recommend"] is False

    a_worker(queues=("cpu",))
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert "The worker is not running" not in page
    warning = page.split('data-testid="worker-missing">')[1].split("</p>")[0]
    assert warning.startswith("No worker is running for the &#x27;gpu&#x27; queue (")
    assert warning.endswith("Train); its jobs will start when one is back.")
    stages = {stage["key"]: stage["worker_running"] for stage in client.get(f"/api/projects/{project.pk}/").json()[
        "stages"]}
    assert stages["recommend"] is True and stages["train"] is False

    a_worker(queues=("cpu", "gpu"))
    assert 'data-testid="worker-missing"' not in client.get(f"/projects/{project.pk}/").content.decode()


def test_a_stage_that_ends_after_its_job_was_reaped_does_not_say_it_succeeded(reaper_settings, dispatched,
                                                                               project):
    from projects.jobs.registry import stage_overridden
    from projects.jobs.runner import job_execute
    from projects.tests import stage_doubles

    stage_doubles.release.clear()
    with stage_overridden("recommend", runner="projects.tests.stage_doubles.silent_stage"):
        job = job_enqueue(project=project, stage_key="recommend")
        thread = threading.Thread(target=job_execute, kwargs={"job_id": job.pk, "attempt": 1})
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while "compiling" not in texts(job) and time.monotonic() < deadline:
                time.sleep(0.05)
            # The reaper gave up on it (its heartbeat was late on a busy machine), then the stage finished.
            Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="Worker x stopped answering.")
        finally:
            stage_doubles.release.set()
            thread.join(30)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Recommend succeeded." not in texts(job)
    assert texts(job)[-1] == ("Attempt 1 ended (Recommend succeeded.) after the job had been marked failed "
                              "(attempt 1), so its outcome is not recorded.")
