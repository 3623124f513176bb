"""What the convert stage says about a target file it built here for the device to run (RKNN, TVM for aarch64)."""

import pytest
from django.test import Client
from django.utils import timezone

from deployment.engine.converters.base import Artifact
from deployment.engine.guard import Attempt, Outcome
from projects.jobs.models import Job, JobStatus
from projects.tests import factories


def device_file(tmp_path) -> Artifact:
    path = tmp_path / "model-rknn-rk3568-int8.rknn"
    path.write_bytes(b"\0" * 8_140_000)
    return Artifact(engine="rknn", precision="int8", path=path, files=[path], task="classification", input_size=96,
                    runs_here=False, notes=["Runs on the rk3568's NPU."])


def test_a_file_made_here_for_the_device_runs_on_device_and_is_never_called_a_build_kit(tmp_path):
    # Regression: the .rknn built (and checked in the simulator) here was logged "builds on device", and the guard
    # said "builds on the device", as if the user's file were still to be made.
    artifact = device_file(tmp_path)
    assert artifact.status == artifact.as_dict()["status"] == "runs on device"
    outcome = Outcome("rknn", "int8", artifact, [Attempt("as asked", "int8", {}, None, None, None, True, 0.1)],
                      {"top1": 100.0}, 1.0)
    assert outcome.summary() == "rknn int8: runs on device; its accuracy is checked there."


@pytest.mark.django_db
def test_the_convert_result_names_the_target_file_its_size_and_where_it_runs(tmp_path):
    # Regression: the artifact table listed the PyTorch weights and the ONNX model but not the .rknn the user asked
    # for; its name and size were only in the log.
    artifact = device_file(tmp_path)
    outcome = Outcome("rknn", "int8", artifact, [Attempt("as asked", "int8", {}, None, None, None, True, 0.1)],
                      {"top1": 100.0}, 1.0)
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    target = {"artifact": None, "engine": "rknn", "precision": "int8", "asked": "int8", "status": artifact.status,
              "guard": outcome.as_dict(), "file": artifact.path.name, "size_mb": 8.14, "notes": artifact.notes}
    Job.objects.create(project=project, stage="convert", status=JobStatus.SUCCEEDED, finished_at=timezone.now(),
                       result={"artifacts": [], "target": target})
    client = Client()
    client.force_login(team.memberships.get().user)
    body = client.get(f"/projects/{project.pk}/").content.decode()
    shown = body[body.index('data-testid="target-file"'):][:300]
    assert "model-rknn-rk3568-int8.rknn" in shown and "8.14 MB" in shown and "runs on device" in shown
    assert "builds on" not in body[body.index("Target: rknn"):][:1500]


@pytest.mark.django_db
def test_the_convert_card_calls_the_target_a_build_kit_when_its_stored_artifact_builds_on_device(tmp_path):
    # Regression: the card decided "build kit" from the status sentence the result kept (t.status == "builds on
    # device") while the stages read the stored artifact's `runs`: other words, or a sentence kept from before the
    # field, and the card and the stages disagreed.
    from deployment.models import Artifact as Stored

    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    job = Job.objects.create(project=project, stage="convert", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    client = Client()
    client.force_login(team.memberships.get().user)

    def card(runs: str, status: str) -> str:
        stored = Stored.objects.create(project=project, job=job, kind=Stored.Kind.TENSORRT, engine="tensorrt",
                                       precision="fp16", path="artifacts/trt_kit.tar", sha256="0" * 64,
                                       status=Stored.Status.VERIFIED, runs=runs)
        outcome = Outcome("tensorrt", "fp16", device_file(tmp_path), [
            Attempt("as asked", "fp16", {}, None, None, None, True, 0.1)], {"top1": 100.0}, 1.0)
        job.result = {"artifacts": [], "target": {
            "artifact": stored.pk, "engine": "tensorrt", "precision": "fp16", "asked": "fp16", "status": status,
            "guard": outcome.as_dict(), "file": "trt_kit.tar", "size_mb": 0.1, "notes": []}}
        job.save(update_fields=["result"])
        body = client.get(f"/projects/{project.pk}/").content.decode()
        return body[body.index("Target: tensorrt"):][:1500]

    assert "The artifact is a build kit" in card(Stored.Runs.BUILDS_ON_DEVICE, "a kit the Jetson turns into its engine")
    assert "build kit" not in card(Stored.Runs.ON_DEVICE, "builds on device")


@pytest.mark.django_db
def test_the_live_console_renders_the_convert_card_from_the_jobs_state(tmp_path):
    # Regression: the card looked the artifact up through the Job (job.artifacts), but the live console renders it
    # from the job's state dict (projects.jobs.consumer._job_state): a convert job finishing while its page was open
    # broke the card's update with AttributeError.
    from django.template.loader import render_to_string

    from deployment.models import Artifact as Stored
    from projects.jobs.consumer import _job_state

    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    job = Job.objects.create(project=project, stage="convert", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    stored = Stored.objects.create(project=project, job=job, kind=Stored.Kind.TENSORRT, engine="tensorrt",
                                   precision="fp16", path="artifacts/trt_kit.tar", sha256="0" * 64,
                                   status=Stored.Status.VERIFIED, runs=Stored.Runs.BUILDS_ON_DEVICE)
    outcome = Outcome("tensorrt", "fp16", device_file(tmp_path), [
        Attempt("as asked", "fp16", {}, None, None, None, True, 0.1)], {"top1": 100.0}, 1.0)
    job.result = {"artifacts": [], "target": {
        "artifact": stored.pk, "engine": "tensorrt", "precision": "fp16", "asked": "fp16", "status": "kit",
        "guard": outcome.as_dict(), "file": "trt_kit.tar", "size_mb": 0.1, "notes": []}}
    job.save(update_fields=["result"])
    live = render_to_string("projects/_job_state.html", {
        "job": _job_state(job.pk), "result_template": "deployment/results/_convert.html"})
    assert "The artifact is a build kit" in live
