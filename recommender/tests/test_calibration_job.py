"""This server measures itself from its device page: staff start the calibration job (a catalog job, no project),
the real runner runs it, the records are stored, and the page shows predicted against measured latency. The same
code runs behind `manage.py tango calibrate` (test_recommendation)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from projects.jobs import services as job_services
from projects.jobs.models import Job, JobStatus
from projects.jobs.reaper import jobs_reap_stale
from projects.jobs.runner import job_execute
from projects.jobs.storage import catalog_dir
from projects.models import AuditEvent
from recommender.engine.calibrate import QUICK_SPREAD, Measured, calibrate
from recommender.models import BenchmarkRecord, Device, RecordSource

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def dispatched(monkeypatch):
    """No broker here: the hand-off to Celery is recorded; the test runs the job as a worker would."""
    sent = []
    monkeypatch.setattr(job_services, "_dispatch", lambda job_id, attempt, queue: sent.append((job_id, attempt, queue)))
    return sent


@pytest.fixture
def host(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return Device.objects.get(is_host=True)  # seeded by the migrations from this machine


def run_dispatched(sent) -> Job:
    job_id, attempt, _ = sent[-1]
    job_execute(job_id=job_id, attempt=attempt)  # the worker's side: claim, run the stage, finish
    return Job.objects.get(pk=job_id)


@pytest.mark.django_db(transaction=True)  # the job is dispatched on commit, as in production
def test_staff_measure_this_server_from_its_page_and_see_predicted_against_measured(
        alice_client, host, dispatched):
    page = alice_client.get(reverse("recommender:device_detail", args=[host.pk])).content.decode()
    assert 'data-testid="calibration"' in page and "No measured records yet" in page

    panel = alice_client.post(reverse("recommender:device_calibrate", args=[host.pk]), {"quick": "1"}, **HTMX)
    assert panel.status_code == 200
    job = Job.objects.get(stage="calibrate")
    assert job.project is None and job.params == {"quick": True} and job.status == JobStatus.QUEUED
    assert dispatched == [(job.pk, 1, "cpu")]
    # The panel comes back with the job's live console (the websocket replays and streams its lines).
    assert f'ws-connect="/ws/jobs/{job.pk}/' in panel.content.decode()
    assert 'data-testid="calibrate-quick" disabled' in panel.content.decode()

    job = run_dispatched(dispatched)
    assert job.status == JobStatus.SUCCEEDED, job.error
    records = BenchmarkRecord.objects.filter(device=host, source=RecordSource.CALIBRATE)
    assert sorted((r.architecture.model_name, r.input_size) for r in records) == sorted(QUICK_SPREAD)
    assert job.result["records"] == sorted(r.pk for r in records) and job.result["device"] == host.pk
    lines = list(job.log_lines.values_list("text", flat=True))
    assert any(line.startswith("resnet18 at 32 px: ") and "predicted" in line for line in lines)
    assert lines[-1] == "Calibrate this server succeeded."
    assert not (catalog_dir() / "jobs" / str(job.pk)).exists() or not any(
        (catalog_dir() / "jobs" / str(job.pk)).rglob("*.onnx"))  # the exports are removed once timed

    # When the job ends its console reloads the panel from here: the records, predicted against measured.
    panel = alice_client.get(reverse("recommender:host_measurements"), **HTMX).content.decode()
    assert "Predicted against measured latency" in panel and "3 records on this device" in panel
    assert 'data-testid="calibration-result"' in panel and "Stored 3 records for This_Server" in panel
    page = alice_client.get(reverse("recommender:device_detail", args=[host.pk])).content.decode()
    assert page.count("<td>Calibration (tango calibrate)</td>") == 3


@pytest.mark.django_db(transaction=True)
def test_the_api_starts_and_follows_the_calibration_as_the_page_does(alice, bob, host, dispatched):
    staff, other = APIClient(), APIClient()
    staff.force_authenticate(alice)
    other.force_authenticate(bob)
    started = staff.post(f"/api/devices/{host.pk}/calibrate/", {"quick": True}, format="json")
    assert started.status_code == 202 and started.data["project"] is None and started.data["stage"] == "calibrate"
    job = run_dispatched(dispatched)
    assert staff.get(f"/api/jobs/{job.pk}/").data["status"] == "succeeded"
    assert "succeeded" in staff.get(f"/api/jobs/{job.pk}/log/").data["lines"][-1]["text"]
    assert [j["id"] for j in staff.get("/api/jobs/", {"stage": "calibrate"}).data["results"]] == [job.pk]
    records = staff.get(f"/api/devices/{host.pk}/records/").data
    assert records["summary"]["count"] == 3 and all(r["backed_by"] == 2 for r in records["records"])
    # Bob is not staff: he cannot start it, and the job does not exist for him; the records are shared.
    assert other.post(f"/api/devices/{host.pk}/calibrate/", {}, format="json").status_code == 403
    assert other.get(f"/api/jobs/{job.pk}/").status_code == 404
    assert other.get("/api/jobs/", {"stage": "calibrate"}).data["results"] == []
    assert other.get(f"/api/devices/{host.pk}/records/").data["summary"]["count"] == 3
    # Curation, as in the admin: staff remove a record, and the others' predictions are fitted without it.
    doomed = records["records"][0]["id"]
    assert other.delete(f"/api/devices/{host.pk}/records/{doomed}/").status_code == 403
    assert staff.delete(f"/api/devices/{Device.objects.exclude(pk=host.pk).first().pk}/records/{doomed}/"
                        ).status_code == 404, "a record is removed through its own device"
    assert staff.delete(f"/api/devices/{host.pk}/records/{doomed}/").status_code == 204
    left = staff.get(f"/api/devices/{host.pk}/records/").data
    assert doomed not in [r["id"] for r in left["records"]] and left["summary"]["count"] == 2
    assert all(r["backed_by"] == 1 for r in left["records"])
    assert AuditEvent.objects.filter(action="deleted", target_type="benchmarkrecord", target_id=str(doomed),
                                     actor=alice).exists()


def test_who_is_not_staff_cannot_start_or_see_the_calibration(bob_client, alice, host, dispatched):
    job = Job.objects.create(project=None, stage="calibrate", status=JobStatus.RUNNING, requested_by=alice)
    assert bob_client.post(reverse("recommender:device_calibrate", args=[host.pk]), {}).status_code == 403
    page = bob_client.get(reverse("recommender:device_detail", args=[host.pk])).content.decode()
    assert 'data-testid="calibration"' not in page and f"/ws/jobs/{job.pk}/" not in page
    assert "Staff measure this server" in page
    assert bob_client.get(reverse("projects:job_detail", args=[job.pk])).status_code == 404
    assert bob_client.get(reverse("projects:job_log_download", args=[job.pk])).status_code == 404
    assert bob_client.post(reverse("projects:job_cancel", args=[job.pk])).status_code == 404
    assert Job.objects.count() == 1 and dispatched == []


def test_only_the_device_that_is_this_server_measures_itself(alice_client, host, dispatched):
    jetson = Device.objects.get(name="Jetson_Nano")
    page = alice_client.get(reverse("recommender:device_detail", args=[jetson.pk])).content.decode()
    assert 'data-testid="calibration"' not in page
    panel = alice_client.post(reverse("recommender:device_calibrate", args=[jetson.pk]), {}, **HTMX)
    assert "Jetson_Nano is not this server" in panel.content.decode()
    assert not Job.objects.exists() and dispatched == []


def test_a_second_calibration_waits_for_the_first(alice_client, host, dispatched):
    url = reverse("recommender:device_calibrate", args=[host.pk])
    alice_client.post(url, {"quick": "1"}, **HTMX)
    again = alice_client.post(url, {}, **HTMX).content.decode()
    assert "Calibrate this server is already queued" in again
    assert Job.objects.filter(stage="calibrate").count() == 1


def test_staff_cancel_a_queued_calibration_and_get_its_panel_back(alice_client, host, dispatched):
    alice_client.post(reverse("recommender:device_calibrate", args=[host.pk]), {}, **HTMX)
    job = Job.objects.get(stage="calibrate")
    response = alice_client.post(reverse("projects:job_cancel", args=[job.pk]), **HTMX, follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert response.redirect_chain[0][0] == reverse("recommender:host_measurements")
    assert 'data-testid="calibrate"' in response.content.decode()  # the panel, ready to start again
    detail = alice_client.get(reverse("projects:job_detail", args=[job.pk])).content.decode()
    assert "Cancelled by alice before it started." in detail and "← This server" in detail


def test_the_reaper_fails_a_calibration_whose_worker_died(host, settings):
    from datetime import timedelta

    from django.utils import timezone

    stale = timezone.now() - timedelta(seconds=settings.TANGO_JOB_STALE_SECONDS + 60)
    job = Job.objects.create(project=None, stage="calibrate", status=JobStatus.RUNNING, heartbeat_at=stale,
                             worker_host="gone")
    jobs_reap_stale()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "Worker gone stopped answering."


def test_the_core_measures_stores_and_reports_each_candidate_in_turn():
    calls = []

    def predict(model, size):
        calls.append(("predict", model))
        return 10.0, len([c for c in calls if c[0] == "store"])

    def measure(model, size):
        calls.append(("measure", model))
        return {"latency_ms": 8.0, "memory_mb": 12.0, "runs": 5}

    lines = []
    done = calibrate(spread=[("a", 32), ("b", 64)], measure=measure, predict=predict,
                     store=lambda m: calls.append(("store", m.model)),
                     report=lambda line, progress=None: lines.append((line, progress)))
    assert calls == [("predict", "a"), ("measure", "a"), ("store", "a"),
                     ("predict", "b"), ("measure", "b"), ("store", "b")]
    assert done[1] == Measured(model="b", input_size=64, latency_ms=8.0, memory_mb=12.0, predicted_ms=10.0,
                               backed_by=1, details={"runs": 5})
    assert lines[-1] == ("b at 64 px: 8.00 ms, 12 MiB (predicted 10.00 ms from 1 record(s) before it, +25%)", 100)


def test_a_cancelled_report_stops_the_core_between_two_candidates():
    class Stop(Exception):
        pass

    measured = []

    def report(line, progress=None):
        if measured:
            raise Stop

    with pytest.raises(Stop):
        calibrate(spread=[("a", 32), ("b", 32)], measure=lambda m, s: measured.append(m) or {"latency_ms": 1.0},
                  predict=lambda m, s: (1.0, 0), store=lambda m: None, report=report)
    assert measured == ["a"]
