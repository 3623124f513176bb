"""Real conversions through the real runtimes, compared with the PyTorch model they came from (Django-free)."""

import numpy as np
import pytest
import torch

from deployment.engine.converters import registry
from deployment.engine.converters.base import ConversionError, calibration_set
from tango_common.engines import ENGINES, engine_support
from tango_common.images import preprocess_image

from .conftest import INPUT_SIZE


@pytest.fixture(scope="module")
def calibration(dataset):
    root, _ = dataset
    return calibration_set(sorted((root / "train").glob("*/*.png"))[:24], split="train", task="classification",
                           input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def batch(val_images):
    return np.stack([preprocess_image(p, INPUT_SIZE) for p in val_images])


def expected(source, batch):
    with torch.no_grad():
        return source.torch_model(torch.from_numpy(batch)).numpy()


def compare(artifact, source, batch):
    got = registry.load(artifact, threads=1)(batch)
    want = expected(source, batch)
    return float(np.abs(got - want).max()), float((got.argmax(1) == want.argmax(1)).mean())


def test_the_registry_and_the_wizards_support_table_agree():
    assert registry.support_matches() == {}
    assert registry.SLOTS == ()  # every engine has its converter
    for engine in registry.SLOTS:
        assert engine_support(engine).built == ()
        with pytest.raises(ConversionError, match="not available in this version"):
            registry.converter_for(engine)
    assert set(registry.engines()) | set(registry.SLOTS) == set(ENGINES)


def test_bf16_is_offered_only_where_the_cpu_has_it():
    assert "bf16" not in engine_support("openvino", flags=frozenset({"avx2"})).built
    assert "bf16" in engine_support("openvino", flags=frozenset({"amx_bf16"})).here
    reason = engine_support("openvino", flags=frozenset()).problem("bf16")
    assert "bf16 instructions" in reason


@pytest.mark.parametrize("precision, atol, agreement", [("fp32", 1e-4, 1.0), ("fp16", 5e-2, 0.95),
                                                        ("int8", None, 0.9)])
def test_onnx_runtime_artifacts_run_and_agree_with_pytorch(source, calibration, batch, tmp_path, precision, atol,
                                                           agreement, report):
    artifact = registry.convert("onnxruntime", source, precision=precision, out_dir=tmp_path,
                                calibration=calibration, report=report)
    described = artifact.as_dict()
    assert described["load_check"]["ran"] and described["load_check"]["output_shape"] == [1, 3]
    assert described["converter_versions"]["onnxruntime"]
    assert described["calibration"] == ({"n_images": 24, "split": "train"} if precision == "int8" else None)
    diff, agree = compare(artifact, source, batch)
    assert agree >= agreement
    if atol is not None:
        assert diff < atol
    if precision == "int8":
        assert artifact.size_bytes < 0.6 * source.onnx_path.stat().st_size  # int8 weights (BN stays float)
        assert any("calibrated on 24 train images" in line for line in report.lines)


def test_int8_without_calibration_images_is_refused(source, tmp_path):
    with pytest.raises(ConversionError, match="needs calibration images"):
        registry.convert("onnxruntime", source, precision="int8", out_dir=tmp_path)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_openvino_artifacts_record_their_precision_hint_and_agree(source, calibration, batch, tmp_path, precision):
    artifact = registry.convert("openvino", source, precision=precision, out_dir=tmp_path, calibration=calibration)
    assert [p.suffix for p in artifact.files] == [".xml", ".bin"]
    bf16_here = "bf16" in registry.precisions_here("openvino")
    if precision == "int8":
        # its float remainder computes in bf16 exactly where the CPU has it, and the record says so
        rest = "bf16" if bf16_here else "f32"
        assert (artifact.options["float_precision"], artifact.options["inference_precision_hint"]) == (rest, rest)
        assert f"the layers left in float compute in {rest}." in " ".join(artifact.notes)
    else:
        assert artifact.options["inference_precision_hint"] in ("f32", "f16")
    assert artifact.converter_versions["openvino"].startswith("2026")
    diff, agree = compare(artifact, source, batch)
    if precision == "fp32":
        assert diff < 1e-4  # f32 made explicit: no silent bf16
    elif precision == "fp16":
        assert diff < 5e-2
    else:
        assert artifact.converter_versions["nncf"] and artifact.calibration == {"n_images": 24, "split": "train"}
        assert agree >= 0.9


def test_openvino_bf16_exists_exactly_where_the_cpu_offers_it(source, tmp_path):
    if "bf16" in registry.precisions_here("openvino"):
        artifact = registry.convert("openvino", source, precision="bf16", out_dir=tmp_path)
        assert artifact.options["inference_precision_hint"] == "bf16"
    else:
        with pytest.raises(ConversionError, match="does not offer bf16"):
            registry.convert("openvino", source, precision="bf16", out_dir=tmp_path)


def test_openvino_int8_float_layers_in_f32_when_asked_and_in_bf16_only_where_the_cpu_has_it(source, calibration,
                                                                                            batch, tmp_path):
    artifact = registry.convert("openvino", source, precision="int8", out_dir=tmp_path / "f32",
                                calibration=calibration, options={"float_precision": "f32"})
    assert artifact.options["inference_precision_hint"] == "f32"
    assert compare(artifact, source, batch)[1] >= 0.9
    if "bf16" in registry.precisions_here("openvino"):
        return
    with pytest.raises(ConversionError, match="needs a CPU with bf16 instructions"):
        registry.convert("openvino", source, precision="int8", out_dir=tmp_path / "bf16", calibration=calibration,
                         options={"float_precision": "bf16"})


@pytest.mark.parametrize("fmt, suffix", [("torchscript", ".ts"), ("exported_program", ".pt2")])
def test_pytorch_artifacts_load_without_the_model_code(source, batch, tmp_path, fmt, suffix):
    artifact = registry.convert("pytorch", source, precision="fp32", out_dir=tmp_path, options={"format": fmt})
    assert artifact.path.suffix == suffix
    diff, agree = compare(artifact, source, batch)
    assert diff < 1e-5 and agree == 1.0


def test_tensorrt_without_tensorrt_hands_over_a_kit_that_builds_on_device(source, calibration, tmp_path):
    artifact = registry.convert("tensorrt", source, precision="int8", out_dir=tmp_path, calibration=calibration)
    described = artifact.as_dict()
    assert (described["status"], described["runs_here"], described["load_check"]) == ("builds on device", False, {})
    names = sorted(p.name for p in artifact.files)
    assert artifact.path.name == "model.onnx" and artifact.path.parent.name == "tensorrt-int8"
    assert names == ["README.txt", "build_trtexec.sh", "calibration.npz", "kit.json", "model.onnx", "trt_build.py"]
    # The calibration images the device reads are the project's, preprocessed as the model was trained.
    import importlib.util

    spec = importlib.util.spec_from_file_location("kit_build", artifact.path.parent / "trt_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    restored = np.concatenate(list(module.calibration_batches(artifact.path.parent / "calibration.npz")))
    original = np.concatenate(list(calibration.arrays()))
    assert restored.shape == original.shape and np.abs(restored - original).max() < 0.02
    with pytest.raises(ConversionError, match="builds on the device"):
        registry.load(artifact)
