"""deployment.engine.measure: latency and top-1 of whatever `run(batch) -> logits` it is handed. Django-free."""

import numpy as np
import pytest
import torch

from deployment.engine.measure import MAX_TIMED_RUNS, measure_artifact, onnx_runner, torch_runner
from deployment.engine.onnx_export import export_onnx
from tango_common.images import preprocess_image

from .conftest import INPUT_SIZE


@pytest.fixture(scope="module")
def samples(val_images, dataset):
    _, class_names = dataset
    return [(path, class_names.index(path.parent.name)) for path in val_images]


def test_top1_is_the_share_of_images_whose_highest_logit_is_their_class(samples):
    batches = []

    def always_class_0(batch):  # right exactly on the images of class 0
        batches.append(len(batch))
        return np.eye(3, dtype=np.float32)[np.zeros(len(batch), dtype=int)]

    figures = measure_artifact(run=always_class_0, input_size=INPUT_SIZE, samples=samples)
    expected = sum(label == 0 for _, label in samples) / len(samples)
    assert figures["top1"] == pytest.approx(expected) and figures["n_images"] == len(samples)
    assert 0 < figures["runs"] <= MAX_TIMED_RUNS and figures["latency_p50_ms"] <= figures["latency_p95_ms"]
    assert max(batches) <= 32


def test_pytorch_and_onnx_runners_of_one_model_score_alike(trained, samples, tmp_path):
    model, _ = trained
    onnx_path = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path / "model.onnx")
    batch = np.stack([preprocess_image(path, INPUT_SIZE) for path, _ in samples[:8]])
    np.testing.assert_allclose(onnx_runner(onnx_path)(batch), torch_runner(model)(batch), atol=1e-4)
    on_torch = measure_artifact(run=torch_runner(model), input_size=INPUT_SIZE, samples=samples)
    on_onnx = measure_artifact(run=onnx_runner(onnx_path), input_size=INPUT_SIZE, samples=samples)
    assert on_torch["top1"] == on_onnx["top1"] > 1 / 3


def test_a_report_that_raises_stops_the_timing_loop(samples):
    class Cancelled(Exception):
        pass

    def report(line=None, progress=None):
        raise Cancelled

    with pytest.raises(Cancelled):
        measure_artifact(run=lambda batch: np.zeros((len(batch), 3), np.float32), input_size=INPUT_SIZE,
                         samples=samples, report=report)


def test_no_samples_is_an_error_not_a_division_by_zero():
    with pytest.raises(ValueError, match="No images"):
        measure_artifact(run=torch_runner(torch.nn.Identity()), input_size=INPUT_SIZE, samples=[])
