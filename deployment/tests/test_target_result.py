"""What the convert stage says about a target file it built here for the device to run (RKNN, TVM for aarch64)."""

import pytest
from django.test import Client
from django.utils import timezone

from deployment.engine.converters.base import IMPORTED_REFERENCE, TRAINED_REFERENCE, Artifact
from deployment.engine.guard import Attempt, Outcome
from projects.jobs.models import Job, JobStatus
from projects.tests import factories


def device_file(tmp_path) -> Artifact:
    path = tmp_path / "model-rknn-rk3568-int8.rknn"
    path.write_bytes(b"\0" * 8_140_000)
    return Artifact(engine="rknn", precision="int8", path=path, files=[path], task="classification", input_size=96,
                    runs_here=False, notes=["Runs on the rk3568's NPU."])


@pytest.fixture
def convert_job(db) -> Job:
    """A finished convert job in a project of alice's (its owner); each test writes its result."""
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    return Job.objects.create(project=project, stage="convert", status=JobStatus.SUCCEEDED, finished_at=timezone.now())


def project_page(job: Job) -> str:
    """The job's project page as its owner sees it."""
    client = Client()
    client.force_login(job.project.team.memberships.get().user)
    return client.get(f"/projects/{job.project.pk}/").content.decode()


def store_target(job: Job, tmp_path, *, engine: str, precision: str, runs: str, status: str,
                 attempt: Attempt | None = None, notes: list | None = None, reference_name: str = TRAINED_REFERENCE,
                 **result) -> None:
    """A convert job's target for the device as stored (its Artifact row: where it runs) and as its result tells it
    (`result`: more of the result's keys, e.g. imported)."""
    from deployment.models import Artifact as Stored

    stored = Stored.objects.create(project=job.project, job=job, kind=engine, engine=engine, precision=precision,
                                   path="artifacts/x", sha256="0" * 64, status=Stored.Status.VERIFIED, runs=runs)
    attempt = attempt or Attempt("as asked", precision, {}, None, None, None, True, 0.1)
    outcome = Outcome(engine, precision, device_file(tmp_path), [attempt], {"top1": 91.25}, 1.0,
                      reference_name=reference_name)
    job.result = {"artifacts": [], **result, "target": {
        "artifact": stored.pk, "engine": engine, "precision": precision, "asked": precision, "status": status,
        "guard": outcome.as_dict(), "file": "x", "size_mb": 0.1, "notes": notes or []}}
    job.save(update_fields=["result"])


def test_a_file_made_here_for_the_device_runs_on_device_and_is_never_called_a_build_kit(tmp_path):
    # Regression: the .rknn built (and checked in the simulator) here was logged "builds on device", and the guard
    # said "builds on the device", as if the user's file were still to be made.
    artifact = device_file(tmp_path)
    assert artifact.status == artifact.as_dict()["status"] == "runs on device"
    outcome = Outcome("rknn", "int8", artifact, [Attempt("as asked", "int8", {}, None, None, None, True, 0.1)],
                      {"top1": 100.0}, 1.0)
    assert "builds" not in outcome.summary()


SIMULATED = {"where": "rknn-toolkit2 x86 simulator", "reference": TRAINED_REFERENCE, "images": 8, "top1_agreement": 1.0,
             "min_cosine": 0.99981, "max_abs_diff": 0.02}


def test_the_guard_says_the_simulator_checked_a_device_file_here_and_what_is_left_to_the_device(tmp_path):
    # Regression: the log reported the simulator check on 8 images (100% agreement) and the guard's summary said
    # "rknn int8: runs on device; its accuracy is checked there.", as if nothing had been checked here.
    artifact = device_file(tmp_path)
    simulated = Outcome("rknn", "int8", artifact, [
        Attempt("as asked", "int8", {}, None, None, None, True, 0.1, simulated=SIMULATED)], {"top1": 100.0}, 1.0)
    assert simulated.summary() == (
        "rknn int8: checked here in the rknn-toolkit2 x86 simulator against the PyTorch model on 8 images (top-1 "
        "agreement "
        "100%, min cosine 0.9998); its accuracy on the device itself is measured there.")
    assert simulated.as_dict()["attempts"][0]["simulated"]["images"] == 8
    unchecked = Outcome("tensorrt", "fp16", artifact, [Attempt("as asked", "fp16", {}, None, None, None, True, 0.1)],
                        {"top1": 100.0}, 1.0)
    assert unchecked.summary() == "tensorrt fp16: nothing could run it here; its accuracy is measured on the device."


def test_the_convert_result_names_the_target_file_its_size_and_where_it_runs(convert_job, tmp_path):
    # Regression: the artifact table listed the PyTorch weights and the ONNX model but not the .rknn the user asked
    # for; its name and size were only in the log.
    artifact = device_file(tmp_path)
    outcome = Outcome("rknn", "int8", artifact, [Attempt("as asked", "int8", {}, None, None, None, True, 0.1)],
                      {"top1": 100.0}, 1.0)
    target = {"artifact": None, "engine": "rknn", "precision": "int8", "asked": "int8", "status": artifact.status,
              "guard": outcome.as_dict(), "file": artifact.path.name, "size_mb": 8.14, "notes": artifact.notes}
    convert_job.result = {"artifacts": [], "target": target}
    convert_job.save(update_fields=["result"])
    body = project_page(convert_job)
    shown = body[body.index('data-testid="target-file"'):][:300]
    assert "model-rknn-rk3568-int8.rknn" in shown and "8.14 MB" in shown and "runs on device" in shown
    assert "builds on" not in body[body.index("Target: rknn"):][:1500]


def test_the_convert_card_calls_the_target_a_build_kit_when_its_stored_artifact_builds_on_device(convert_job,
                                                                                               tmp_path):
    # Regression: the card decided "build kit" from the status sentence the result kept (t.status == "builds on
    # device") while the stages read the stored artifact's `runs`: other words, or a sentence kept from before the
    # field, and the card and the stages disagreed.
    from deployment.models import Artifact as Stored

    def card(runs: str, status: str) -> str:
        store_target(convert_job, tmp_path, engine="tensorrt", precision="fp16", runs=runs, status=status)
        body = project_page(convert_job)
        return body[body.index("Target: tensorrt"):][:1500]

    assert "The artifact is a build kit" in card(Stored.Runs.BUILDS_ON_DEVICE, "a kit the Jetson turns into its engine")
    assert "build kit" not in card(Stored.Runs.ON_DEVICE, "builds on device")


def test_the_live_console_renders_the_convert_card_from_the_jobs_state(convert_job, tmp_path):
    # Regression: the card looked the artifact up through the Job (job.artifacts), but the live console renders it
    # from the job's state dict (projects.jobs.consumer._job_state): a convert job finishing while its page was open
    # broke the card's update with AttributeError.
    from django.template.loader import render_to_string

    from deployment.models import Artifact as Stored
    from projects.jobs.consumer import _job_state

    store_target(convert_job, tmp_path, engine="tensorrt", precision="fp16", runs=Stored.Runs.BUILDS_ON_DEVICE,
                 status="kit")
    live = render_to_string("projects/_job_state.html", {
        "job": _job_state(convert_job.pk), "result_template": "deployment/results/_convert.html"})
    assert "The artifact is a build kit" in live


def test_the_card_never_calls_an_attempt_nobody_measured_passed_and_names_an_imported_reference(convert_job,
                                                                                                tmp_path):
    # Regression: a build kit's guard row read "checked on the device" as its accuracy and "passed", though nothing
    # was checked here; the simulator's figures were not shown; "builds on device" was said three times; and an
    # imported model's reference metrics were labelled "PyTorch".
    from deployment.models import Artifact as Stored

    def card(engine: str, runs: str, attempt: Attempt, status: str, notes: list, **result) -> str:
        store_target(convert_job, tmp_path, engine=engine, precision="int8", runs=runs, status=status,
                     attempt=attempt, notes=notes, reference_name=IMPORTED_REFERENCE if result else TRAINED_REFERENCE,
                     **result)
        body = project_page(convert_job)
        return body[body.index(f"Target: {engine}"):body.index("</table>", body.index(f"Target: {engine}")) + 300]

    kit = card("tensorrt", Stored.Runs.BUILDS_ON_DEVICE, Attempt("as asked", "int8", {}, None, None, None, True, 0.1),
               "builds on device", ["on the device, python3 trt_build.py --precision int8 makes the engine"])
    assert "not measured here" in kit and "to be measured on the device" in kit
    assert ">passed<" not in kit and "checked on the device" not in kit
    assert kit.count("builds on device") == 1 and "The PyTorch model: top1 91.25%" in kit

    rknn = card("rknn", Stored.Runs.ON_DEVICE, Attempt("as asked", "int8", {}, None, None, None, True, 0.1,
                                                       simulated=SIMULATED), "runs on device", [], imported="onnx")
    assert "in the rknn-toolkit2 x86 simulator, on 8 images: top-1 agreement 100% with the PyTorch model" in rknn
    assert ">passed<" not in rknn and "The imported model: top1 91.25%" in rknn


def test_an_rknn_file_converted_before_the_guard_kept_its_simulator_check_shows_that_check(convert_job, tmp_path):
    # Regression: results stored before the guard kept `simulated` on the attempt read "not measured here" on the card
    # and "runs on device; its accuracy is checked there." as the summary, though the conversion had checked the file
    # in the simulator (its figures are in the artifact's load_check). The data migration copies them onto it.
    import importlib

    from django.apps import apps

    from deployment.models import Artifact as Stored

    store_target(convert_job, tmp_path, engine="rknn", precision="int8", runs=Stored.Runs.ON_DEVICE,
                 status="runs on device")
    stored = Stored.objects.get(job=convert_job)
    old = {**convert_job.result["target"]["guard"], "summary": "rknn int8: runs on device; its accuracy is checked "
           "there."}  # as the guard wrote it then, with no `simulated` on its attempts
    old["attempts"] = [{k: v for k, v in a.items() if k != "simulated"} for a in old["attempts"]]
    stored.checks = {"conversion": {"load_check": {"ran": True, **SIMULATED}}, "guard": old}
    stored.save(update_fields=["checks"])
    convert_job.result["target"]["guard"] = old
    convert_job.save(update_fields=["result"])
    before = project_page(convert_job)
    assert "not measured here" in before[before.index("Target: rknn"):]

    importlib.import_module("deployment.migrations.0007_guard_simulated").add_simulated(apps, None)
    after = project_page(convert_job)
    card = after[after.index("Target: rknn"):after.index("</table>", after.index("Target: rknn"))]
    assert "in the rknn-toolkit2 x86 simulator, on 8 images: top-1 agreement 100% with the PyTorch model" in card
    assert "not measured here" not in card and "to be measured on the device" in card
    assert ("rknn int8: checked here in the rknn-toolkit2 x86 simulator against the PyTorch model on 8 images (top-1 "
            "agreement 100%, min cosine 0.9998); its accuracy on the device itself is measured there.") in card
    convert_job.refresh_from_db()
    stored.refresh_from_db()
    assert convert_job.result["target"]["guard"] == stored.checks["guard"]
    assert stored.checks["guard"]["attempts"][0]["simulated"]["images"] == 8
    # a TensorRT kit of the same age: nothing ran it here, and its summary says so in today's words
    convert_job.result = {}
    convert_job.save(update_fields=["result"])
    Stored.objects.filter(job=convert_job).delete()
    store_target(convert_job, tmp_path, engine="tensorrt", precision="fp16", runs=Stored.Runs.BUILDS_ON_DEVICE,
                 status="builds on device")
    kit = Stored.objects.get(job=convert_job)
    kit.checks = {"conversion": {"load_check": {"ran": False}}, "guard": old | {"engine": "tensorrt", "asked": "fp16"}}
    kit.save(update_fields=["checks"])
    importlib.import_module("deployment.migrations.0007_guard_simulated").add_simulated(apps, None)
    kit.refresh_from_db()
    assert kit.checks["guard"]["attempts"][0]["simulated"] is None
    assert kit.checks["guard"]["summary"] == ("tensorrt fp16: nothing could run it here; its accuracy is measured on "
                                              "the device.")
