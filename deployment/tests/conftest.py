"""Fixtures for the Django-free deployment core: a small trained classifier and the images it was trained on."""

import pytest
import torch

from training.engine.synthetic import make_dataset
from training.engine.train import TrainConfig, train
from training.engine.zoo import build_model

INPUT_SIZE = 16


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """(data_dir, class_names): 3 classes of 16x16 PNGs."""
    root = tmp_path_factory.mktemp("data")
    return root, make_dataset(root)


@pytest.fixture(scope="session")
def val_images(dataset):
    root, _ = dataset
    return sorted((root / "val").glob("*/*.png"))


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory):
    """(model, class_names) after two epochs of densenet_tiny: confident enough that top-1 is not a coin toss."""
    root, class_names = dataset
    config = TrainConfig(model="densenet_tiny", epochs=2, batch_size=16, input_size=INPUT_SIZE, seed=1)
    out = tmp_path_factory.mktemp("run")
    result = train(data_dir=root, class_names=class_names, config=config, out_dir=out, report=lambda *a, **k: None)
    model = build_model("densenet_tiny", num_classes=len(class_names), input_size=INPUT_SIZE)
    model.load_state_dict(torch.load(result.weights_path, weights_only=True))
    return model.eval(), class_names


@pytest.fixture
def report():
    """A report() callback that keeps its lines in report.lines."""

    def record(line, progress=None):
        if line is not None:
            record.lines.append(line)

    record.lines = []
    return record


@pytest.fixture(scope="session")
def source(trained, tmp_path_factory):
    """The trained classifier exported to ONNX: what every converter takes."""
    from deployment.engine.converters.base import Source
    from deployment.engine.onnx_export import export_onnx

    model, _ = trained
    path = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("onnx") / "model.onnx")
    return Source(onnx_path=path, task="classification", input_size=INPUT_SIZE, torch_model=model)
