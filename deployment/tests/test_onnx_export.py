import onnx
import pytest
import torch

from deployment.engine.onnx_export import check_parity, export_onnx, parity_ok
from training.engine.zoo import build_model

from .conftest import INPUT_SIZE


def test_a_trained_model_exports_to_one_file_with_named_dynamic_batch(trained, tmp_path):
    model, _ = trained
    path = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path / "model.onnx")

    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no side file of external weights
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    model = build_model("resnet18", num_classes=3, input_size=16).train()
    export_onnx(model, input_size=16, path=tmp_path / "m.onnx")
    assert model.training


def test_onnx_runtime_agrees_with_pytorch_on_the_trained_model(trained, val_images, tmp_path, report):
    model, _ = trained
    path = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path / "model.onnx")

    result = check_parity(model, path, val_images, input_size=INPUT_SIZE, report=report, batch_size=10)

    assert result["n_images"] == len(val_images) == 24
    assert result["max_abs_diff"] < 1e-3
    assert result["top1_agreement"] == 1.0
    assert parity_ok(result)
    assert report.lines[0].startswith("parity on 24 images")


@pytest.mark.parametrize("name", ["resnet18", "vgg_tiny"])
def test_other_families_export_with_parity(name, val_images, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, input_size=INPUT_SIZE).eval()
    path = export_onnx(model, input_size=INPUT_SIZE, path=tmp_path / f"{name}.onnx")
    result = check_parity(model, path, val_images[:8], input_size=INPUT_SIZE)
    assert result["max_abs_diff"] < 1e-3 and result["top1_agreement"] == 1.0


def test_parity_ok_flags_drift_and_disagreement():
    assert not parity_ok({"max_abs_diff": 0.2, "top1_agreement": 1.0, "output_scale": 10.0})  # 2% of the scale
    assert parity_ok({"max_abs_diff": 3.91e-3, "top1_agreement": 1.0, "output_scale": 12.0})
    assert not parity_ok({"max_abs_diff": 1e-5, "top1_agreement": 0.9})
