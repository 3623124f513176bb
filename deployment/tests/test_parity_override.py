"""A conversion that fails its parity check: a readable failure (no traceback) that keeps what was measured, and an
override the user records with a reason (page button and API), audited, after which benchmark can run."""

import functools

import pytest
import torch
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from deployment.engine import onnx_export
from deployment.models import Artifact
from projects.jobs import services as job_services
from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.storage import job_dir, relative
from projects.models import AuditEvent
from projects.tests import factories
from training.engine.zoo import build_model
from training.models import TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def failed_conversion(monkeypatch):
    """A real export and a real PyTorch/ONNX Runtime comparison, judged by a rule no model can meet (agreement on
    more than every image), so the stage fails as a genuine mismatch would."""
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    project = factories.training_project(team)
    train = Job.objects.create(project=project, stage="train", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    classes = project.dataset.class_names
    weights = job_dir(train) / "best.pt"
    torch.manual_seed(0)
    torch.save(build_model("densenet_tiny", num_classes=len(classes), input_size=16).state_dict(), weights)
    TrainingRun.objects.create(job=train, project=project, model_name="densenet_tiny", weights_path=relative(weights),
                               metrics={"best_top1": 0.5},
                               architecture={"num_classes": len(classes), "class_names": classes, "input_size": 16})
    monkeypatch.setattr(onnx_export, "parity_ok", functools.partial(onnx_export.parity_ok, min_agreement=1.01))
    job = Job.objects.create(project=project, stage="convert", status=JobStatus.QUEUED)
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    return job


def test_a_failed_parity_reads_as_a_reason_and_can_be_accepted_with_a_recorded_override(failed_conversion):
    job = failed_conversion
    assert job.status == JobStatus.FAILED and job.error.startswith("ONNX Runtime disagrees with PyTorch: on ")
    assert "of the output scale" in job.error and "accept it anyway" in job.error
    log = "\n".join(job.log_lines.values_list("text", flat=True))
    assert "Traceback" not in log
    assert job.result["parity_failed"] and job.result["parity"]["top1_agreement"] == 1.0
    onnx = Artifact.objects.get(job=job, kind=Artifact.Kind.ONNX)
    assert onnx.status == Artifact.Status.FAILED

    alice, carol = (job.project.team.members.get(username=n) for n in ("alice", "carol"))
    page = Client()
    page.force_login(alice)
    html = page.get(reverse("projects:detail", args=[job.project.pk])).content.decode()
    assert 'data-testid="accept-convert"' in html
    body = page.post(reverse("deployment:convert_accept", args=[job.pk]), {"reason": " "}).content.decode()
    assert "Say why the difference is acceptable" in body

    api = APIClient()
    api.force_authenticate(carol)
    assert api.post(f"/api/conversions/{job.pk}/accept/", {"reason": "fine"}).status_code == 403
    api.force_authenticate(alice)
    response = api.post(f"/api/conversions/{job.pk}/accept/", {"reason": "top-1 agrees everywhere"})
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    onnx.refresh_from_db()
    assert onnx.status == Artifact.Status.ACCEPTED
    assert onnx.checks["override"]["by"] == "alice" and onnx.checks["override"]["reason"] == "top-1 agrees everywhere"
    event = AuditEvent.objects.get(action="overridden")
    assert event.actor_name == "alice" and "top-1 agrees everywhere" in event.detail
    assert api.post(f"/api/conversions/{job.pk}/accept/", {"reason": "again"}).status_code == 409
    assert "Accepted by alice" in "\n".join(job.log_lines.values_list("text", flat=True))
    html = page.get(reverse("projects:detail", args=[job.project.pk])).content.decode()
    assert 'data-testid="parity-override"' in html

    benchmark = job_services.job_enqueue(project=job.project, stage_key="benchmark")
    job_execute(job_id=benchmark.pk, attempt=1)
    benchmark.refresh_from_db()
    assert benchmark.status == JobStatus.SUCCEEDED, benchmark.error
