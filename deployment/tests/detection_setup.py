"""A trained tiny detector ready for the converters: its ONNX export, the validation split the guard judges it on
and a calibration set from the training split. Shared by the converter tests of every engine."""

from pathlib import Path

from deployment.engine.converters.base import Source, calibration_set
from deployment.engine.detect_onnx import _export_copy, export_detector_onnx, load_detector
from deployment.engine.guard import Validation
from training.tests.detection_support import INPUT_SIZE, trained_detector


def detector_for_conversion(tmp_path_factory):
    """(source, validation, calibration) for the session's trained detector."""
    shared = trained_detector(tmp_path_factory.getbasetemp())
    data = Path(shared["data_dir"])
    model = _export_copy(load_detector(Path(shared["result"]["weights_path"])))
    onnx_path = export_detector_onnx(model, input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("det") / "m.onnx")
    source = Source(onnx_path=onnx_path, task="detection", input_size=INPUT_SIZE, torch_model=model)
    validation = Validation(task="detection", input_size=INPUT_SIZE, num_classes=len(model.names), samples=[
        (p, data / "labels" / "val" / f"{p.stem}.txt") for p in sorted((data / "images" / "val").glob("*.jpg"))])
    calibration = calibration_set(sorted((data / "images" / "train").glob("*.jpg")), split="train", task="detection",
                                  input_size=INPUT_SIZE)
    return source, validation, calibration
