"""Running stages, cancelling and retrying jobs, and reading their logs over the API."""

import pytest

from projects.jobs.models import Job, JobLogLine, JobStatus

from .conftest import make_job


@pytest.fixture
def bob(client_for):
    return client_for("editor")


def test_running_a_stage_queues_a_job_and_hands_it_to_celery_on_commit(
        world, bob, dispatch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post(f"/api/projects/{world.spare_project.pk}/stages/recommend/run/")
    assert response.status_code == 202
    assert response.data["status"] == "queued"
    assert response.data["requested_by"] == "bob"
    job = Job.objects.get(pk=response.data["id"])
    assert (job.project, job.stage) == (world.spare_project, "recommend")
    dispatch.assert_called_once_with(job.pk, 1, "cpu")


def test_a_stage_whose_prerequisite_has_not_run_is_refused_with_409(world, bob):
    response = bob.post(f"/api/projects/{world.spare_project.pk}/stages/train/run/")
    assert response.status_code == 409
    assert response.data["detail"] == "Run Recommend first."
    assert not world.spare_project.jobs.exists()


def test_a_stage_already_queued_is_refused(world, bob):
    response = bob.post(f"/api/projects/{world.project.pk}/stages/train/run/")
    assert response.status_code == 409
    assert response.data["detail"] == "Train is already queued. Run Recommend first."


def test_an_unknown_stage_is_not_found(world, bob):
    assert bob.post(f"/api/projects/{world.project.pk}/stages/deploy/run/").status_code == 404


def test_the_pipeline_starts_at_the_first_stage_not_yet_done(world, bob):
    make_job(world.spare_project, "recommend", JobStatus.SUCCEEDED)
    response = bob.post(f"/api/projects/{world.spare_project.pk}/pipeline/run/")
    assert response.status_code == 202
    assert (response.data["stage"], response.data["status"]) == ("train", "queued")


def test_cancelling_a_queued_job_cancels_it_at_once(world, bob):
    response = bob.post(f"/api/jobs/{world.queued_job.pk}/cancel/")
    assert response.status_code == 200
    assert (response.data["status"], response.data["cancel_requested"]) == ("cancelled", True)


def test_cancelling_a_running_job_asks_it_to_stop(world, bob):
    running = make_job(world.spare_project, "recommend", JobStatus.RUNNING)
    response = bob.post(f"/api/jobs/{running.pk}/cancel/")
    assert (response.data["status"], response.data["cancel_requested"]) == ("running", True)


def test_a_finished_job_cannot_be_cancelled(world, bob):
    response = bob.post(f"/api/jobs/{world.failed_job.pk}/cancel/")
    assert response.status_code == 409
    assert response.data["detail"] == "The job is failed; only queued or running jobs can be cancelled."


def test_retrying_a_failed_job_queues_its_next_attempt(world, bob, dispatch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post(f"/api/jobs/{world.failed_job.pk}/retry/")
    assert response.status_code == 202
    assert (response.data["status"], response.data["attempt"]) == ("queued", 2)
    dispatch.assert_called_once_with(world.failed_job.pk, 2, "cpu")


def test_cancel_then_retry_walks_a_job_through_its_states(world, bob):
    url = f"/api/jobs/{world.queued_job.pk}/"
    assert bob.post(url + "cancel/").data["status"] == "cancelled"
    assert bob.post(url + "retry/").data["status"] == "queued"
    assert bob.post(url + "retry/").status_code == 409
    assert bob.get(url).data["attempt"] == 2


def test_the_project_jobs_list_holds_only_that_projects_jobs_newest_first(world, bob):
    response = bob.get(f"/api/projects/{world.project.pk}/jobs/")
    assert [j["id"] for j in response.data["results"]] == [world.queued_job.pk, world.failed_job.pk]
    assert bob.get(f"/api/projects/{world.spare_project.pk}/jobs/").data["results"] == []


def test_the_jobs_list_is_scoped_and_filters_by_status(world, client_for):
    make_job(world.other_project, "recommend", JobStatus.QUEUED)
    carol = client_for("viewer")
    assert carol.get("/api/jobs/").data["count"] == 2
    assert [j["id"] for j in carol.get("/api/jobs/", {"status": "failed"}).data["results"]] == [world.failed_job.pk]


@pytest.fixture
def long_job(world):
    return make_job(world.project, "convert", JobStatus.RUNNING, [f"line {i}" for i in range(1, 8)])


def test_the_log_returns_the_lines_after_n_in_order(world, long_job, client_for):
    page = client_for("viewer").get(f"/api/jobs/{long_job.pk}/log/", {"after": 3}).data
    assert [(line["seq"], line["text"]) for line in page["lines"]] == [(i, f"line {i}") for i in range(4, 8)]
    assert (page["status"], page["next_after"], page["has_more"]) == ("running", 7, False)


def test_the_log_pages_by_limit_and_next_after(world, long_job, client_for):
    carol = client_for("viewer")
    url = f"/api/jobs/{long_job.pk}/log/"
    first = carol.get(url, {"limit": 5}).data
    assert ([line["seq"] for line in first["lines"]], first["has_more"]) == ([1, 2, 3, 4, 5], True)
    second = carol.get(url, {"after": first["next_after"], "limit": 5}).data
    assert ([line["seq"] for line in second["lines"]], second["has_more"]) == ([6, 7], False)
    caught_up = carol.get(url, {"after": second["next_after"]}).data
    assert (caught_up["lines"], caught_up["next_after"]) == ([], 7)


def test_a_bad_log_cursor_is_a_400(world, long_job, client_for):
    response = client_for("viewer").get(f"/api/jobs/{long_job.pk}/log/", {"after": -1, "limit": 0})
    assert response.status_code == 400
    assert set(response.data) == {"after", "limit"}


def test_the_log_downloads_as_plain_text(world, client_for):
    JobLogLine.objects.create(job=world.failed_job, seq=3, text="<b>not html</b>")
    response = client_for("viewer").get(f"/api/jobs/{world.failed_job.pk}/log.txt")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="job-{world.failed_job.pk}-recommend.log"'
    assert response.streaming  # sent as it is read, never built in memory
    assert b"".join(response.streaming_content).decode() == "Recommend queued.\nBoom.\n<b>not html</b>\n"
