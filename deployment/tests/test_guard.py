"""The accuracy guard on real conversions: a deliberately bad calibration set trips it and it falls back."""

import numpy as np
import pytest
from PIL import Image

from deployment.engine.converters import registry
from deployment.engine.converters.base import Source, calibration_set
from deployment.engine.guard import Validation, guarded_convert, ladder
from deployment.engine.onnx_export import export_onnx
from training.engine.data import list_images

from .conftest import INPUT_SIZE


@pytest.fixture(scope="module")
def setup(trained, dataset, tmp_path_factory):
    model, class_names = trained
    root, _ = dataset
    folder = tmp_path_factory.mktemp("guard")
    source = Source(onnx_path=export_onnx(model, input_size=INPUT_SIZE, path=folder / "model.onnx"),
                    task="classification", input_size=INPUT_SIZE, torch_model=model)
    validation = Validation(task="classification", input_size=INPUT_SIZE, num_classes=len(class_names),
                            samples=list_images(root / "val", class_names))
    reference = validation.evaluate(registry.load(registry.convert("pytorch", source, precision="fp32",
                                                                   out_dir=folder / "pt")))
    good = calibration_set(sorted((root / "train").glob("*/*.png")), split="train", task="classification",
                           input_size=INPUT_SIZE)
    # Deliberately bad: four black squares, nothing like the data, so every activation range is wrong.
    black = []
    for i in range(4):
        path = folder / f"black{i}.png"
        Image.fromarray(np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)).save(path)
        black.append(path)
    bad = calibration_set(black, split="train", task="classification", input_size=INPUT_SIZE)
    return source, validation, reference, good, bad


def test_a_good_calibration_passes_on_the_first_try(setup, tmp_path, report):
    source, validation, reference, good, _ = setup
    outcome = guarded_convert("onnxruntime", source, precision="int8", out_dir=tmp_path, validation=validation,
                              reference=reference, calibration=good, report=report)
    assert outcome.passed and outcome.fallback is None and outcome.artifact.precision == "int8"
    assert outcome.as_dict()["attempts"][0]["drop"] <= 1.0
    assert any("passes" in line for line in report.lines)


def test_a_bad_calibration_set_trips_the_guard_and_it_falls_back_by_itself(setup, tmp_path, report):
    source, validation, reference, good, bad = setup
    outcome = guarded_convert("onnxruntime", source, precision="int8", out_dir=tmp_path, validation=validation,
                              reference=reference, calibration=bad, more_calibration=good, tolerance=1.0,
                              report=report)
    first, last = outcome.attempts[0], outcome.attempts[-1]
    assert first.step == "as asked" and not first.passed and first.drop > 1.0
    assert outcome.passed and last.passed and last.drop <= 1.0 and outcome.fallback == last.step != "as asked"
    assert any("over the 1-point tolerance" in line for line in report.lines)
    assert "fell back" in outcome.summary()
    # Nothing that failed is left on disk: only the passing artifact's folder.
    assert [p.name for p in tmp_path.iterdir()] == [outcome.artifact.path.parent.name]


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    """Bad for NNCF: four mid-gray squares (it calibrates through the black ones above and still scores 100%)."""
    folder = tmp_path_factory.mktemp("gray")
    paths = []
    for i in range(4):
        paths.append(folder / f"gray{i}.png")
        Image.fromarray(np.full((INPUT_SIZE, INPUT_SIZE, 3), 128, dtype=np.uint8)).save(paths[-1])
    return calibration_set(paths, split="train", task="classification", input_size=INPUT_SIZE)


def test_openvino_int8_trips_on_a_bad_calibration_set_with_its_float_layers_in_bf16_too(setup, gray, tmp_path,
                                                                                        report):
    """On a bf16 CPU the int8 model's float remainder runs in bf16: the guard judges that artifact as compiled, and
    a bad calibration set still fails it; whatever passes records the precision its float layers computed in."""
    source, validation, reference, good, _ = setup
    outcome = guarded_convert("openvino", source, precision="int8", out_dir=tmp_path, validation=validation,
                              reference=reference, calibration=gray, more_calibration=good, tolerance=1.0,
                              report=report)
    first = outcome.attempts[0]
    rest = "bf16" if "bf16" in registry.precisions_here("openvino") else "f32"
    assert first.step == "as asked" and first.options["float_precision"] == rest
    assert not first.passed and first.drop > 1.0
    assert outcome.passed and outcome.fallback != "as asked"
    artifact = outcome.artifact
    if artifact.precision == "int8":
        assert artifact.options["inference_precision_hint"] == artifact.options["float_precision"]
    steps = [a.step for a in outcome.attempts]
    assert ("float layers in f32" in steps) == (rest == "bf16")


def test_openvino_accuracy_control_ships_the_float_precision_its_candidates_were_judged_in(setup, tmp_path, report):
    """The "most sensitive layers kept in float" step: NNCF's accuracy control compiles the candidates it judges
    itself, with its own settings (f32, where OpenVINO's own default on an AMX CPU is bf16). The artifact keeps its
    float layers in the precision they were judged in — as the ladder asks, and when a step asked for the other."""
    source, validation, reference, good, _ = setup
    step = next(s for s in ladder("openvino", "int8", "classification", more_calibration=None,
                                  validation=validation) if s[0] == "most sensitive layers kept in float")
    asked = [step[2]]
    if "bf16" in registry.precisions_here("openvino"):
        asked.append({**step[2], "float_precision": "bf16"})
    for index, options in enumerate(asked):
        artifact = registry.convert("openvino", source, precision="int8", out_dir=tmp_path / str(index),
                                    calibration=good, options=options, report=report)
        judged = artifact.options["accuracy_control"]["judged_in"]
        assert judged in ("f32", "bf16")
        assert artifact.options["float_precision"] == artifact.options["inference_precision_hint"] == judged
        if options.get("float_precision", judged) != judged:
            assert any(f"keeps them in {judged} (not {options['float_precision']}), as judged" in line
                       for line in report.lines)
        metrics = validation.evaluate(registry.load(artifact, threads=1))
        assert reference["top1"] - metrics["top1"] <= 1.0


def test_the_ladder_orders_the_fallbacks():
    steps = [s[0] for s in ladder("onnxruntime", "int8", "detection", more_calibration=None, validation=None)]
    assert steps == ["as asked", "detection decode kept in float", "detection head kept in float",
                     "most sensitive layers kept in float", "fp16"]
    # an engine whose converter cannot keep the decode alone in float goes straight to the whole head
    tflite = [s[0] for s in ladder("tflite", "int8", "detection", more_calibration=None, validation=None)]
    assert tflite[:2] == ["as asked", "detection head kept in float"]
    assert [s[1] for s in ladder("openvino", "bf16", "classification", more_calibration=None,
                                 validation=None)] == ["bf16", "fp32"]
    # OpenVINO on a bf16 CPU: the decode's float layers back in f32 before the whole head goes float, and every
    # later int8 step keeps them in f32
    openvino = ladder("openvino", "int8", "detection", more_calibration=None, validation=Validation(
        task="detection", input_size=32, samples=[], num_classes=1))
    if "bf16" in registry.precisions_here("openvino"):
        assert [s[0] for s in openvino][:4] == ["as asked", "detection decode kept in float", "float layers in f32",
                                                "detection head kept in float"]
        assert openvino[2][2] == {"decode_in_float": True, "float_precision": "f32"}
        assert all(s[2].get("float_precision") == "f32" for s in openvino[2:] if s[1] == "int8")
    else:
        assert "float layers in f32" not in [s[0] for s in openvino]


def test_the_summary_of_a_fallback_after_a_failed_conversion_says_so():
    """A first attempt that did not convert has no drop (TFLite int8 whose file XNNPACK would not prepare): the
    summary said so by crashing on None."""
    from deployment.engine.guard import Attempt, Outcome

    failed = Attempt("as asked", "int8", {}, None, None, None, False, 1.0, error="XNNPACK failed to prepare")
    passed = Attempt("fp16", "fp16", {}, None, {"top1": 94.0}, 0.0, True, 1.0)
    outcome = Outcome("tflite", "int8", object(), [failed, passed], {"top1": 94.0}, 1.0)
    assert outcome.summary() == ("tflite int8 did not convert; the guard fell back to 'fp16' (fp16, drop +0.00).")
