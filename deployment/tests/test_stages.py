"""The convert, benchmark and package runners called directly (no job machinery): what each writes and returns.

The trained model is a freshly initialised densenet_tiny saved as a training run would save it: conversion,
measurement and packaging do not care how good the weights are, only that every runtime agrees on them.
"""

import zipfile

import pytest
import torch

from deployment import packaging, services
from deployment.engine import benchmark, timing
from deployment.models import Artifact
from projects.jobs.errors import StageError
from projects.jobs.models import Job, JobStatus
from projects.jobs.storage import absolute, job_dir
from projects.tests import factories
from training.models import TrainingRun

from .training_runs import INPUT_SIZE, job_for, trained_run

pytestmark = pytest.mark.django_db


class Report:
    """The report callback a runner gets: keeps lines and the last progress."""

    def __init__(self):
        self.lines, self.progress = [], None

    def __call__(self, line=None, progress=None, message=None):
        if line is not None:
            self.lines.append(line)
        if progress is not None:
            self.progress = progress


@pytest.fixture
def project(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    torch.manual_seed(0)
    return factories.training_project(factories.team_with("Vision", alice="owner"))


@pytest.fixture
def trained(project) -> TrainingRun:
    return trained_run(project)


@pytest.fixture
def converted(project, trained) -> Job:
    job = job_for(project, "convert")
    job.result = services.convert_stage(job, Report())
    job.status = JobStatus.SUCCEEDED
    job.save()
    return job


def test_convert_keeps_the_weights_and_an_onnx_model_verified_against_pytorch(project, trained):
    job, report = job_for(project, "convert"), Report()
    result = services.convert_stage(job, report)
    pytorch, onnx = Artifact.objects.filter(job=job).order_by("id")
    assert (pytorch.kind, pytorch.status, pytorch.path) == (Artifact.Kind.PYTORCH, "verified", trained.weights_path)
    assert (onnx.kind, onnx.status) == (Artifact.Kind.ONNX, "verified")
    assert absolute(onnx.path) == job_dir(job, keep=True) / "model.onnx" and absolute(onnx.path).is_file()
    parity = onnx.checks["parity"]
    assert parity["max_abs_diff"] < 1e-3 and parity["top1_agreement"] == 1.0
    assert parity["n_images"] == len(project.dataset.class_names) * 6  # the whole validation split
    assert result["artifacts"] == [pytorch.pk, onnx.pk] and report.progress == 100


def test_convert_marks_the_onnx_model_failed_when_the_runtimes_disagree(project, trained, monkeypatch):
    monkeypatch.setattr("deployment.engine.onnx_export.parity_ok", lambda parity: False)
    job = job_for(project, "convert")
    with pytest.raises(StageError, match="ONNX Runtime disagrees with PyTorch"):
        services.convert_stage(job, Report())
    assert Artifact.objects.get(job=job, kind=Artifact.Kind.ONNX).status == "failed"


def test_convert_says_which_engine_and_precision_it_cannot_build_here(project, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path / "no-side-envs"))  # TFLite's environment not installed
    project.engine, project.precision = "tflite", "int8"
    project.save()
    report = Report()
    result = services.convert_stage(job_for(project, "convert"), report)
    assert result["target"]["artifact"] is None and "./tango engines install tflite" in result["target"]["note"]
    assert any("TensorFlow Lite needs its own environment" in line and "The ONNX model made here is the hand-over"
               in line for line in report.lines)


def test_benchmark_measures_every_verified_artifact_on_its_own_runtime(project, converted):
    job, report = job_for(project, "benchmark"), Report()
    result = services.benchmark_stage(job, report)
    assert [row["kind"] for row in result["rows"]] == ["PyTorch weights", "ONNX model"]
    for row in result["rows"]:
        assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"] and 0 <= row["top1"] <= 1
        assert row["n_images"] == len(project.dataset.class_names) * 6
    pytorch, onnx = result["rows"]
    assert pytorch["top1"] == onnx["top1"], "the same weights on two runtimes classify alike"
    assert Artifact.objects.get(pk=onnx["artifact"]).benchmark["latency_p50_ms"] == onnx["latency_p50_ms"]
    assert result["device"] == "Odroid_N2" and "not the target device's" in report.lines[0]


def test_benchmark_on_this_server_says_the_figures_are_the_target_device_s(project, converted):
    from django.template.loader import render_to_string

    from recommender.services import host_device_refresh

    project.device = host_device_refresh()  # This_Server: the portal's own server is the target
    project.save()
    report = Report()
    result = services.benchmark_stage(job_for(project, "benchmark"), report)
    assert "This server is the project's target device." in report.lines[0]
    page = render_to_string("deployment/results/_benchmark.html", {"result": result})
    assert f"the project's target device ({project.device.name})" in page and "not This_Server" not in page


def test_benchmark_needs_a_successful_conversion(project, trained):
    with pytest.raises(StageError, match="No successful convert job"):
        services.benchmark_stage(job_for(project, "benchmark"), Report())


def test_package_bundles_for_the_device_tier_and_runs_the_bundle_s_own_checks(project, converted):
    job, report = job_for(project, "package"), Report()
    result = packaging.package_stage(job, report)
    bundle = Artifact.objects.get(pk=result["bundle"])
    assert (bundle.kind, bundle.status, bundle.engine) == (Artifact.Kind.BUNDLE, "verified", "onnxruntime")
    assert bundle.checks["passed"] and bundle.checks["ran"] == ["smoke_test.py"]  # Odroid_N2: on-device, no server
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        names = set(archive.namelist())
    assert {"model.onnx", "infer.py", "runtime.py", "smoke_test.py", "samples/expected.json"} <= names
    assert "serve.py" not in names and "Dockerfile" not in names
    assert result["file"] == "patterns-on-device-bundle.zip" and result["tier"] == "on_device"
    assert any("PASSED: 4 of 4 samples agree" in line for line in report.lines) and report.progress == 100


def test_a_project_named_in_any_script_is_packaged_under_a_short_ascii_file_name(project, converted):
    project.name = "猫と犬の画像分類" * 12 + "!"  # 97 characters, 289 bytes in UTF-8: past a file name's 255
    project.save(update_fields=["name"])
    result = packaging.package_stage(job_for(project, "package"), Report())
    assert result["file"] == "project-on-device-bundle.zip"
    assert absolute(Artifact.objects.get(pk=result["bundle"]).path).is_file()


def test_package_for_a_pc_starts_the_bundle_s_server_and_checks_it(project, converted):
    project.device.tier, project.device.name = "pc", "Lab_PC"
    project.device.save()
    result = packaging.package_stage(job_for(project, "package"), Report())
    assert result["ran"] == ["smoke_test.py", "serve.py", "healthcheck.py", "smoke_test.py --url"]
    assert {"serve.py", "healthcheck.py", "Dockerfile"} <= set(result["files"])
    assert result["file"] == "patterns-pc-bundle.zip"


def test_convert_builds_the_projects_engine_and_precision_through_the_guard(project, trained):
    from recommender.models import BenchmarkRecord

    project.engine, project.precision = "onnxruntime", "int8"
    project.save()
    job, report = job_for(project, "convert"), Report()
    result = services.convert_stage(job, report)
    target = Artifact.objects.get(pk=result["target"]["artifact"])
    assert (target.kind, target.engine, target.status) == (Artifact.Kind.ONNX, "onnxruntime", "verified")
    conversion, guard = target.checks["conversion"], target.checks["guard"]
    assert conversion["load_check"]["ran"] and conversion["converter_versions"]["onnxruntime"]
    assert guard["passed"] and guard["attempts"][-1]["drop"] <= 1.0 and target.precision == guard["precision"]
    if target.precision == "int8":
        assert conversion["calibration"]["split"] == "train" and conversion["calibration"]["n_images"] > 0
    assert any(line.startswith("Accuracy guard: the PyTorch model on") for line in report.lines)
    assert any(line.startswith("guard: onnxruntime") for line in report.lines)
    job.status = JobStatus.SUCCEEDED
    job.result = result
    job.save()

    bench, report = job_for(project, "benchmark"), Report()
    rows = services.benchmark_stage(bench, report)["rows"]
    assert [(r["engine"], r["precision"]) for r in rows] == [("pytorch", "fp32"), ("onnxruntime", "fp32"),
                                                             ("onnxruntime", target.precision)]
    for row in rows:
        assert 0 < row["latency_p50_ms"] <= row["latency_p90_ms"] <= row["latency_p99_ms"]
        assert row["throughput_ips"] > 0 and row["accuracy"]["n_images"] == row["n_images"]
    records = BenchmarkRecord.objects.filter(project=project, source="benchmark")
    assert sorted((r.engine, r.precision) for r in records) == sorted(
        [("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", target.precision)])
    record = records.get(engine="onnxruntime", precision=target.precision)
    assert record.device.is_host and record.team == project.team and record.accuracy == rows[2]["accuracy"]["top1"]
    # The record holds the block-median CPU time that tango calibrate and the latency model use, and says so.
    assert record.details["timing"] == f"{timing.METHOD} (as tango calibrate)"
    assert record.latency_ms == pytest.approx(benchmark.record_latency_ms(rows[2]))


def test_tensorrt_on_this_server_is_a_kit_that_builds_on_device_and_is_not_timed(project, trained):
    project.engine, project.precision = "tensorrt", "fp16"
    project.save()
    job = job_for(project, "convert")
    result = services.convert_stage(job, Report())
    kit = Artifact.objects.get(pk=result["target"]["artifact"])
    assert kit.kind == Artifact.Kind.TENSORRT and kit.runs == Artifact.Runs.BUILDS_ON_DEVICE
    assert result["target"]["status"] == "builds on device"
    job.status = JobStatus.SUCCEEDED
    job.save()
    report = Report()
    rows = services.benchmark_stage(job_for(project, "benchmark"), report)["rows"]
    assert [r["engine"] for r in rows] == ["pytorch", "onnxruntime"]
    assert any("builds on the device; not measured here" in line for line in report.lines)


def _device_only(converted, **checks) -> Artifact:
    """An RKNN file beside the convert job's ONNX model: built for the board, as the convert stage stores one."""
    onnx = converted.artifacts.get(kind=Artifact.Kind.ONNX)
    return Artifact.objects.create(
        project=converted.project, job=converted, training_run=onnx.training_run, kind=Artifact.Kind.RKNN,
        engine="rknn", precision="int8", path=onnx.path.replace("model.onnx", "model.rknn"), size_bytes=1004,
        sha256="0" * 64, status=Artifact.Status.VERIFIED, **checks)


def test_benchmark_says_a_device_only_file_runs_on_the_device_from_its_runs_field(project, converted):
    # It read the words of a status sentence in checks["conversion"]: a conversion recorded without it (or with
    # other words) was called "runs on the device" whatever it was.
    _device_only(converted, runs=Artifact.Runs.ON_DEVICE, checks={"conversion": {"files": ["model.rknn"]}})
    report = Report()
    rows = services.benchmark_stage(job_for(project, "benchmark"), report)["rows"]
    assert [r["engine"] for r in rows] == ["pytorch", "onnxruntime"]
    assert any(line.startswith("RKNN model (rknn int8): runs on the device; not measured here.")
               for line in report.lines)


def test_the_migration_reads_where_existing_artifacts_run_from_their_conversion(project, converted):
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    migration = importlib.import_module("deployment.migrations.0006_artifact_runs")
    state = MigrationExecutor(connection).loader.project_state(("deployment", "0006_artifact_runs"))
    # rows as they stood before the field: every one "here" (its default)
    rknn = _device_only(converted, checks={"conversion": {"runs_here": False, "builds_on_device": False,
                                                          "status": "runs on device"}})
    kit = _device_only(converted, checks={"conversion": {"runs_here": False, "builds_on_device": True,
                                                         "status": "builds on device"}})
    bundle = _device_only(converted, checks={"source_artifact": kit.pk})
    Artifact.objects.filter(pk=bundle.pk).update(kind=Artifact.Kind.BUNDLE)
    onnx = converted.artifacts.get(kind=Artifact.Kind.ONNX)
    migration.runs_from_checks(state.apps, None)
    runs = dict(Artifact.objects.values_list("pk", "runs"))
    assert (runs[rknn.pk], runs[kit.pk], runs[bundle.pk], runs[onnx.pk]) == (
        "on_device", "builds_on_device", "builds_on_device", "here")


def _converted_for(project, engine, precision):
    project.engine, project.precision = engine, precision
    project.save()
    job = job_for(project, "convert")
    job.result = services.convert_stage(job, Report())
    job.status = JobStatus.SUCCEEDED
    job.save()
    return Artifact.objects.get(pk=job.result["target"]["artifact"])


def test_package_carries_the_engine_the_guard_passed_and_runs_it_in_the_bundle(project, trained):
    target = _converted_for(project, "openvino", "fp32")
    report = Report()
    result = packaging.package_stage(job_for(project, "package"), report)
    assert (result["engine"], result["runtime"], result["precision"]) == ("openvino", "OpenVINO", target.precision)
    assert {"model.xml", "model.bin", "runtime.py"} <= set(result["files"]) and "model.onnx" not in result["files"]
    assert any("PASSED: 4 of 4 samples agree with the PyTorch model" in line for line in report.lines)


def test_package_of_a_tensorrt_kit_smoke_tests_its_onnx_here_and_builds_the_engine_on_the_device(project, trained):
    # Regression: the package stage only verified a TensorRT kit's checksums; its model.onnx runs here.
    _converted_for(project, "tensorrt", "fp16")
    report = Report()
    result = packaging.package_stage(job_for(project, "package"), report)
    assert result["runtime"] == "TensorRT" and result["ran"] == ["smoke_test.py"]
    assert result["note"].startswith("ONNX checked here with ONNX Runtime; the TensorRT engine is built and measured "
                                     "on the device")
    assert {"model.onnx", "trt_build.py", "runtime.py", "runtime_host.py", "smoke_test.py"} <= set(result["files"])
    assert any("PASSED: 4 of 4 samples agree with the PyTorch model" in line for line in report.lines)
    assert Artifact.objects.get(pk=result["bundle"]).status == Artifact.Status.VERIFIED


def test_package_of_an_rknn_target_runs_the_rknn_file_on_the_board_and_checks_model_onnx_here(project, converted):
    # Regression: with RKNN int8 asked for and its .rknn built and checked by convert, the package stage logged "No
    # verified rknn int8 artifact" and shipped an ONNX-only bundle; then it carried the .rknn beside an ONNX Runtime
    # bundle whose runtime.py never loaded it, and whose requirements had no RKNN runtime.
    project.engine, project.precision = "rknn", "int8"
    project.save()
    onnx = converted.artifacts.get(kind=Artifact.Kind.ONNX)
    rknn = absolute(onnx.path).parent / "model-rknn-rk3568-int8.rknn"
    rknn.write_bytes(b"RKNN" + b"\0" * 1000)  # never read here: only the board's runtime opens it
    Artifact.objects.create(
        project=project, job=converted, training_run=onnx.training_run, kind=Artifact.Kind.RKNN, engine="rknn",
        precision="int8", path=onnx.path.replace("model.onnx", rknn.name), size_bytes=1004, sha256="0" * 64,
        status=Artifact.Status.VERIFIED, runs=Artifact.Runs.ON_DEVICE,
        checks={"conversion": {"files": [rknn.name], "runs_here": False, "builds_on_device": False,
                               "options": {"platform": "rk3568"},
                               "converter_versions": {"rknn-toolkit2": "2.3.2", "numpy": "1.26.4"}},
                "target": True})
    report = Report()
    result = packaging.package_stage(job_for(project, "package"), report)
    assert not any("No verified rknn int8" in line for line in report.lines)
    assert (result["engine"], result["precision"], result["runtime"]) == ("rknn", "int8", "RKNN (Rockchip NPU)")
    assert {"model.rknn", "model.onnx", "runtime.py", "runtime_host.py"} <= set(result["files"])
    assert "the smoke test here ran model.onnx" in result["device_note"]
    bundle = Artifact.objects.get(pk=result["bundle"])
    assert bundle.status == "verified"
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        assert archive.read("model.rknn") == rknn.read_bytes()
        assert archive.read("model.onnx") == absolute(onnx.path).read_bytes()
        assert "RKNNLite" in archive.read("runtime.py").decode()
        assert 'rknn-toolkit-lite2==2.3.2; platform_machine == "aarch64"' in archive.read("requirements.txt").decode()
        readme = archive.read("README.md").decode()
        assert "`model.rknn`: the model built for the board's Rockchip NPU" in readme
        assert "An image classifier" in readme
    assert any("on model.onnx: this machine is not the device" in line for line in bundle.checks["smoke_test"])


def test_the_compare_stage_is_table_2_live(project, converted):
    from deployment.optimize import compare_stage

    project.options = {**project.options, "compare_engines": ["onnxruntime"]}
    project.save()
    steps = []

    class Steps(Report):
        def __call__(self, line=None, progress=None, message=None):
            super().__call__(line, progress, message)
            if progress is not None:
                steps.append(round(progress, 1))

    report = Steps()
    result = compare_stage(job_for(project, "compare"), report)
    # each size takes minutes on a real model: the bar moves row by row, not only when a size is done
    assert steps == sorted(steps) and steps[-1] == 100 and [s for s in steps if 0 < s < 50]
    # and the console says which row it is on before the row's minutes start, then its figures once done
    starts = [i for i, line in enumerate(report.lines) if line.endswith("converting, then the accuracy guard and the "
                                                                        "timing…")]
    assert [report.lines[i].split(":")[0] for i in starts] == [
        f"{size} px — onnxruntime {precision}" for size in (INPUT_SIZE, 2 * INPUT_SIZE)
        for precision in ("fp32", "fp16", "int8")]
    done = [next(j for j, line in enumerate(report.lines) if line.startswith(report.lines[i].split(":")[0] + ": p50"))
            for i in starts]
    assert all(start < end for start, end in zip(starts, done, strict=True))
    assert [t["input_size"] for t in result["tables"]] == [INPUT_SIZE, 2 * INPUT_SIZE]
    for table in result["tables"]:
        assert [(r["engine"], r["asked"]) for r in table["rows"]] == [
            ("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("onnxruntime", "int8")]
        assert table["rows"][0]["speedup_cpu"] == 1.0 and table["pick"]["engine"] == "onnxruntime"
        assert all(r["delta"] >= -1.0 for r in table["rows"] if r.get("cpu_p10_ms"))
    assert len(result["chart"]) == 8 and max(bar["width"] for bar in result["chart"]) == 100.0


@pytest.mark.django_db
def test_the_engine_builds_for_the_project_devices_cpu_or_soc():
    from deployment.optimize import device_target_options
    from recommender.models import Device

    assert device_target_options(Device.objects.get(name="Odroid_N2"), "tvm") == {"target": "aarch64"}
    assert device_target_options(Device.objects.get(name="PC"), "tvm") == {}
    assert device_target_options(Device.objects.get(name="Odroid_M1"), "rknn") == {"platform": "rk3568"}
    assert device_target_options(Device.objects.get(name="Rock_5B"), "rknn") == {"platform": "rk3588"}


def test_the_api_answers_what_the_convert_benchmark_and_package_cards_show(project, trained):
    """The stage cards render the job's result (and where the stored artifact runs); the API answers them: the
    guard's steps and story, the converter versions and calibration set, Table 2's speed-up and accuracy delta, the
    bundle's checksum (of the very bytes it downloads)."""
    import hashlib
    from html import unescape

    from django.template.loader import render_to_string
    from rest_framework.test import APIClient

    project.engine, project.precision = "onnxruntime", "int8"
    project.save()
    api = APIClient()
    api.force_authenticate(project.team.members.get(username="alice"))
    answers, cards = {}, {}
    for stage, run in (("convert", services.convert_stage), ("benchmark", services.benchmark_stage),
                       ("package", packaging.package_stage)):
        job = job_for(project, stage)
        job.result, job.status = run(job, Report()), JobStatus.SUCCEEDED
        job.save()
        answers[stage] = api.get(f"/api/jobs/{job.pk}/").data["result"]
        cards[stage] = unescape(render_to_string(f"deployment/results/_{stage}.html",
                                                 {"result": job.result, "job": job, "project": project}))

    target = answers["convert"]["target"]
    assert target["guard"]["summary"] and target["guard"]["summary"] in cards["convert"]
    assert [a["precision"] for a in target["guard"]["attempts"]] and all(
        a["step"] in cards["convert"] for a in target["guard"]["attempts"])
    stored = api.get(f"/api/artifacts/{target['artifact']}/").data
    conversion = stored["checks"]["conversion"]
    assert conversion["converter_versions"]["onnxruntime"] and stored["runs"] == "here"
    if stored["precision"] == "int8":
        calibration = conversion["calibration"]
        assert calibration["split"] == "train" and f"{calibration['n_images']} train images" in cards["convert"]

    rows = answers["benchmark"]["rows"]
    assert [r["speedup"] for r in rows][0] == 1.0 and all("delta" in r for r in rows)
    assert all(f"{r['speedup']}×" in cards["benchmark"] for r in rows)

    package = answers["package"]
    bundle = api.get(f"/api/artifacts/{package['bundle']}/").data
    download = api.get(f"/api/artifacts/{package['bundle']}/download/")
    assert bundle["sha256"] == package["sha256"] == hashlib.sha256(b"".join(download.streaming_content)).hexdigest()
    assert package["sha256"][:15] in cards["package"]
