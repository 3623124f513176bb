"""A phone-class project through the portal's stages with TensorFlow Lite: the convert stage builds the .tflite
through the accuracy guard and stores it, the benchmark stage measures it on the TFLite interpreter, and the package
stage ships it with a runtime.py for LiteRT, checked by running the unpacked bundle's smoke test. Needs the TFLite
environment (`./tango engines install tflite`); skips without it."""

import zipfile

import pytest
import torch

from deployment import packaging, services
from deployment.models import Artifact
from projects.jobs.models import JobStatus
from projects.jobs.storage import absolute
from projects.tests import factories
from tango_common.sideenvs import TFLITE

from .training_runs import job_for, trained_run

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not TFLITE.ready(), reason="the TFLite environment is not installed (./tango engines install tflite)"
    ),
]


def test_convert_benchmark_and_package_a_tflite_model_for_a_phone_class_device(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    torch.manual_seed(0)
    project = factories.training_project(factories.team_with("Vision", alice="owner"))  # Odroid_N2: runs TFLite
    project.engine, project.precision = "tflite", "fp16"
    project.save()
    trained_run(project)

    convert, lines = job_for(project, "convert"), []
    convert.result = services.convert_stage(convert, lambda line=None, **_: line and lines.append(line))
    convert.status = JobStatus.SUCCEEDED
    convert.save()
    target = Artifact.objects.get(pk=convert.result["target"]["artifact"])
    assert (target.kind, target.engine, target.status) == (Artifact.Kind.TFLITE, "tflite", "verified")
    assert absolute(target.path).suffix == ".tflite" and target.checks["guard"]["passed"]
    conversion = target.checks["conversion"]
    assert conversion["converter_versions"]["onnx2tf"] and conversion["load_check"]["ran"]
    assert any("TFLite interpreter against the PyTorch model" in line for line in lines)

    rows = services.benchmark_stage(job_for(project, "benchmark"), lambda *a, **k: None)["rows"]
    tflite = next(r for r in rows if r["engine"] == "tflite")
    assert tflite["latency_p50_ms"] > 0 and tflite["accuracy"]["n_images"] > 0

    package, lines = job_for(project, "package"), []
    result = packaging.package_stage(package, lambda line=None, **_: line and lines.append(line))
    bundle = Artifact.objects.get(pk=result["bundle"])
    assert (bundle.status, bundle.engine, result["runtime"]) == ("verified", "tflite", "TensorFlow Lite (LiteRT)")
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        assert "model.tflite" in archive.namelist()
        assert "ai-edge-litert==" in archive.read("requirements.txt").decode()
    assert any("PASSED" in line for line in lines)


@pytest.mark.timeout(1200)  # onnx2tf builds the detector (minutes on a loaded host)
@pytest.mark.django_db(transaction=True)
def test_a_detection_project_for_a_phone_gets_a_tflite_detector_with_boxes_in_its_bundle(monkeypatch,
                                                                                         tmp_path_factory):
    from projects.jobs import services as job_services
    from training.tests.test_detection_stage import run_stage

    from .detection_setup import detection_project_trained

    monkeypatch.setattr(job_services, "_dispatch", lambda *args: None)
    # after training: the session's trained detector (its training is another test's subject)
    project = detection_project_trained(
        factories.team_with("Vision", alice="owner"), tmp_path_factory.getbasetemp(), engine="tflite",
        precision="fp16", device=factories.device("Galaxy_S22", accelerator_kind="adreno_gpu",
                                                  engines=["pytorch", "tflite"]))

    convert = run_stage(project, "convert")
    target = Artifact.objects.get(pk=convert.result["target"]["artifact"])
    assert (target.kind, target.engine, target.status) == (Artifact.Kind.TFLITE, "tflite", "verified")
    guard = target.checks["guard"]
    assert guard["passed"] and {"map50", "map50_95"} <= set(guard["attempts"][-1]["metrics"])
    log = list(convert.log_lines.values_list("text", flat=True))
    assert any("TFLite interpreter against the PyTorch model" in line for line in log)

    rows = run_stage(project, "benchmark").result["rows"]
    tflite = next(r for r in rows if r.get("engine") == "tflite")
    assert tflite["latency_p50_ms"] > 0

    package = run_stage(project, "package")
    bundle = Artifact.objects.get(job=package, kind="bundle")
    assert (bundle.status, bundle.engine) == ("verified", "tflite") and "smoke_test.py" in bundle.checks["ran"]
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        assert "model.tflite" in archive.namelist()
        assert "draw" in archive.read("infer.py").decode()  # the detector's infer.py: boxes out, drawn
