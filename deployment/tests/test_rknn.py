"""RKNN through the converter registry: real .rknn builds by rknn-toolkit2 in its own environment, checked in its x86
simulator against the PyTorch model. They need that environment (`./tango engines install rknn`, ~1.5 GB): without
it they skip, and the engine says how to install it. Django-free."""

import numpy as np
import pytest

from deployment.engine.converters import registry
from deployment.engine.converters.base import ConversionError, Source, calibration_set
from deployment.engine.converters.rknn import RknnConverter
from tango_common.engines import engine_support
from tango_common.sideenvs import RKNN

from .conftest import INPUT_SIZE

needs_env = pytest.mark.skipif(not RKNN.ready(), reason="the RKNN environment is not installed (./tango engines "
                                                       "install rknn)")


@pytest.fixture(scope="module")
def calibration(dataset):
    root, _ = dataset
    return calibration_set(sorted((root / "train").glob("*/*.png"))[:16], split="train", task="classification",
                           input_size=INPUT_SIZE)


def test_without_its_environment_rknn_is_unavailable_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path))  # no side environment under this root
    why = RknnConverter().missing()
    assert "./tango engines install rknn" in why
    assert engine_support("rknn").built == ()
    assert "./tango engines install rknn" in engine_support("rknn").problem("int8")
    assert registry.support_matches() == {}
    with pytest.raises(ConversionError, match="engines install rknn"):
        registry.convert("rknn", Source(onnx_path=tmp_path / "x.onnx", task="classification", input_size=16),
                         precision="fp16", out_dir=tmp_path)


@needs_env
def test_fp16_build_for_rk3588_matches_pytorch_in_the_simulator(source, tmp_path):
    assert engine_support("rknn").on_device == ("fp16", "int8") and registry.support_matches() == {}
    artifact = registry.convert("rknn", source, precision="fp16", out_dir=tmp_path, options={"platform": "rk3588"})
    assert artifact.path.suffix == ".rknn" and artifact.path.stat().st_size > 1000
    check = artifact.load_check
    assert check["where"] == "rknn-toolkit2 x86 simulator" and check["reference"] == "the PyTorch model"
    assert check["min_cosine"] > 0.999 and check["top1_agreement"] == 1.0
    report = artifact.as_dict()
    assert report["status"] == "runs on device" and report["converter_versions"]["rknn-toolkit2"] == "2.3.2"
    with pytest.raises(ConversionError, match="does not run on this server"):
        registry.load(artifact)


@needs_env
def test_int8_build_for_rk3566_is_calibrated_on_the_projects_images(source, calibration, tmp_path):
    with pytest.raises(ConversionError, match="calibration"):
        registry.convert("rknn", source, precision="int8", out_dir=tmp_path, options={"platform": "rk3566"})
    artifact = registry.convert("rknn", source, precision="int8", out_dir=tmp_path, calibration=calibration,
                                options={"platform": "rk3566", "check_images": 6})
    assert artifact.calibration == {"n_images": 16, "split": "train"}
    assert artifact.path.name == "model-rknn-rk3566-int8.rknn"
    check = artifact.load_check
    assert check["images"] == 6 and np.isfinite(check["max_abs_diff"]) and check["min_cosine"] > 0.9
