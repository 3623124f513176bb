"""A YOLO11n detector through TensorFlow Lite: onnx2tf turns its ONNX export into .tflite files (fp32, fp16, int8
with the head kept in float), the TFLite interpreter finds the same boxes as PyTorch, the accuracy guard judges
them in mAP50 and mAP50-95 (the phone bundle: test_tflite_stages.py's detection project). Needs the TFLite
environment (`./tango engines install tflite`); skips without it. Django-free."""

import numpy as np
import pytest
import torch

from deployment.engine.converters import registry
from deployment.engine.guard import guarded_convert
from tango_common.sideenvs import TFLITE

from .detection_setup import detector_for_conversion

pytestmark = [
    pytest.mark.skipif(
        not TFLITE.ready(), reason="the TFLite environment is not installed (./tango engines install tflite)"
    ),
    # each onnx2tf build of YOLO11n takes a minute of CPU, several on a loaded 2-core host
    pytest.mark.timeout(1200),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    source, validation, calibration = detector_for_conversion(tmp_path_factory)
    reference = validation.evaluate(registry.load(registry.convert(
        "pytorch", source, precision="fp32", out_dir=tmp_path_factory.mktemp("pt"))))
    return source, validation, calibration, reference


@pytest.fixture(scope="module")
def fp32(setup, tmp_path_factory):
    source = setup[0]
    return registry.convert("tflite", source, precision="fp32", out_dir=tmp_path_factory.mktemp("tflite-det"))


def test_a_detector_converts_to_tflite_and_finds_the_same_boxes_as_pytorch(setup, fp32):
    source, validation, calibration, reference = setup
    assert fp32.path.suffix == ".tflite" and fp32.task == "detection"
    check = fp32.options["interpreter_check"]
    assert check["reference"] == "the PyTorch model" and check["max_abs_diff"] < 1e-2 and check["min_cosine"] > 0.9999
    batch = next(calibration.arrays())
    with torch.no_grad():
        want = source.torch_model(torch.from_numpy(batch)).numpy()
    got = registry.load(fp32, threads=1)(batch)
    assert got.shape == want.shape == (len(batch), 4 + len(source.torch_model.names), want.shape[2])
    assert np.abs(got - want).max() < 1e-2  # boxes in input pixels, scores in [0, 1]
    metrics = validation.evaluate(registry.load(fp32, threads=1))
    assert all(abs(metrics[m] - reference[m]) <= 1.0 for m in ("map50", "map50_95"))


def test_detection_int8_goes_through_the_guard_with_the_head_in_float(setup, tmp_path):
    # one guard run, its attempts inspected (each onnx2tf build takes a minute): plain int8, then the head in float
    source, validation, calibration, reference = setup
    lines = []
    outcome = guarded_convert("tflite", source, precision="int8", out_dir=tmp_path / "guard", validation=validation,
                              reference=reference, calibration=calibration.first(8), tolerance=1.0,
                              report=lines.append)
    steps = [a.step for a in outcome.attempts]
    assert steps[0] == "as asked" and all(a.metrics is not None for a in outcome.attempts if a.error is None)
    assert outcome.passed, outcome.summary()
    head = [a for a in outcome.attempts if a.step == "detection head kept in float"]
    assert len(steps) == 1 or head, steps
    if head and head[0].error is None:
        assert head[0].options["head_in_float"] and head[0].options["kept_float"]
        assert head[0].calibration == {"n_images": 8, "split": "train"}
    assert np.isfinite(registry.load(outcome.artifact)(next(calibration.arrays()))).all()
    assert any(line.startswith("guard: ") and "int8" in line for line in lines)


# The phone bundle of a detector (LiteRT smoke test, infer.py drawing boxes) is built and checked by
# test_tflite_stages.py's detection project, through the package stage a user runs.
