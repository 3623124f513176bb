"""bf16 as a project precision: offered for the engine that builds it (OpenVINO) only where the CPU has bf16
arithmetic, through the wizard's choices and the API's rules alike; the convert stage builds it with the explicit
INFERENCE_PRECISION_HINT and the accuracy guard checks it like any other precision."""

import json
import zipfile

import pytest
import torch
from django.core.exceptions import ValidationError

import tango_common.engines as engines
from deployment import packaging, services
from deployment.models import Artifact
from projects.engine_support import precision_choice_problem, precision_choices
from projects.jobs.models import JobStatus
from projects.jobs.storage import absolute
from projects.models import Precision
from projects.services import project_validate
from projects.tests import factories

from .training_runs import job_for, trained_run

pytestmark = pytest.mark.django_db

HAS_BF16 = engines.cpu_has_bf16()


def test_bf16_is_a_project_precision_only_openvino_offers():
    assert "bf16" in Precision.values
    assert "bf16" in [c.value for c in precision_choices(task="classification", engine="openvino")]
    for engine in ("onnxruntime", "pytorch", "tvm", "tflite", "rknn"):
        assert "bf16" not in [c.value for c in precision_choices(task="classification", engine=engine)]
        assert "does not support bf16" in precision_choice_problem(
            task="classification", engine=engine, precision="bf16"
        )


def test_bf16_is_greyed_out_with_the_reason_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(engines, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    choice = next(c for c in precision_choices(task="classification", engine="openvino") if c.value == "bf16")
    assert not choice.enabled and "no bf16 instructions" in choice.problem
    monkeypatch.setattr(engines, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16"}))
    choice = next(c for c in precision_choices(task="classification", engine="openvino") if c.value == "bf16")
    assert choice.enabled or "openvino is not installed" in (choice.problem or "")


def test_the_api_and_settings_rules_refuse_bf16_for_an_engine_without_it(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    project.precision = "bf16"
    with pytest.raises(ValidationError) as refused:
        project_validate(project)
    assert "does not support bf16" in str(refused.value.message_dict["precision"])  # its engine is ONNX Runtime


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 instructions (AVX512-BF16 / AMX)")
def test_the_convert_stage_builds_openvino_bf16_with_the_explicit_hint(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    torch.manual_seed(0)
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    project.engine, project.precision = "openvino", "bf16"
    project.save()
    trained_run(project)
    job = job_for(project, "convert")
    lines = []
    result = services.convert_stage(job, lambda line=None, **_: line and lines.append(line))
    target = Artifact.objects.get(pk=result["target"]["artifact"])
    guard = target.checks["guard"]
    assert target.engine == "openvino" and guard["passed"]
    assert guard["attempts"][0]["precision"] == "bf16"
    if target.precision == "bf16":  # the guard may fall back to fp32; either way it says so
        assert target.checks["conversion"]["options"]["inference_precision_hint"] == "bf16"
        assert guard["attempts"][-1]["drop"] <= 1.0
    assert any("INFERENCE_PRECISION_HINT=bf16" in line for line in lines)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 instructions (AVX512-BF16 / AMX)")
def test_an_openvino_bundle_computes_at_the_precision_the_portal_checked(settings, tmp_path):
    """The int8 model's float layers ran in bf16 through the guard and the benchmark: so does its bundle, whose
    health check says so (the bundle compiled in f32 and described it as "<Type: 'float32'>")."""
    settings.MEDIA_ROOT = tmp_path / "media"
    torch.manual_seed(0)
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    project.engine, project.precision = "openvino", "int8"
    project.device.tier = "pc"  # served: the package stage starts serve.py and reads its /healthz
    project.device.save()
    project.save()
    trained_run(project)
    convert = job_for(project, "convert", JobStatus.SUCCEEDED)
    target = Artifact.objects.get(pk=services.convert_stage(convert, lambda *a, **k: None)["target"]["artifact"])
    hint = target.checks["conversion"]["options"]["inference_precision_hint"]  # bf16 unless the guard fell back
    lines = []
    result = packaging.package_stage(job_for(project, "package"), lambda line=None, **_: line and lines.append(line))
    bundle = Artifact.objects.get(pk=result["bundle"])
    with zipfile.ZipFile(absolute(bundle.path)) as archive:
        assert json.loads(archive.read("preprocess.json"))["inference_precision"] == hint
    assert any("answered /healthz (healthy: openvino" in line and f"(CPU, {hint})" in line for line in lines)
