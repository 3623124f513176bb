"""Engine checks from the one table of engine facts (tango_common.engines.LAYER_FACTS): every fact says where it
comes from; the editor flags what each engine cannot run or runs slowly, on classifiers and on a detector's rows;
and the two engines the table lists no layer fact for on the CPU (ONNX Runtime apart from its slow path, and
OpenVINO) load and run every layer type of the palette."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tango_common.engines import ENGINES, LAYER_FACTS, ONNX_ENGINES, layer_facts
from training.engine.yolo.zoo import model_dict
from visualizer.graph.checks import engine_flags
from visualizer.graph.edits import apply
from visualizer.graph.layers import PALETTE
from visualizer.graph.yolo import yolo_graph

from .test_graph import ids, meta_graph


def build(spec):
    from ultralytics.nn.tasks import parse_model

    return parse_model(copy.deepcopy(spec), ch=3, verbose=False)[0]


def test_every_fact_is_about_known_engines_and_says_where_it_comes_from():
    for fact in LAYER_FACTS:
        assert fact.engines and fact.engines <= set(ENGINES)
        assert fact.level in ("unsupported", "slow") and fact.why and len(fact.source) > 20
    covered = {engine for fact in LAYER_FACTS for engine in fact.engines}
    assert covered == set(ENGINES)  # the ONNX export's limits hold for every engine but PyTorch
    assert {"rknn", "tensorrt", "pytorch", "onnxruntime", "tflite"} <= {
        engine for fact in LAYER_FACTS if fact.engines != ONNX_ENGINES for engine in fact.engines}


def flags_by_node(graph, engine):
    return {flag["node"]: flag for flag in engine_flags(graph, engine)}


def test_classifier_layers_are_flagged_per_engine_with_the_setting_that_matters():
    graph, _ = meta_graph("resnet18")
    node = ids(graph)
    assert all(engine_flags(graph, engine) == [] for engine in ENGINES)  # the zoo model runs everywhere
    edited = apply(graph, [
        {"op": "set", "node": node["layer1.0.conv2"], "params": {"groups": 4}},  # grouped
        {"op": "set", "node": node["layer2.0.conv2"], "params": {"kernel_size": 33, "padding": 16}},
        {"op": "insert", "after": node["layer3.0.relu"], "layer": "LeakyReLU"},
        {"op": "resize", "node": node["layer4.0.conv1"], "channels": 500},
        {"op": "set", "node": node["avgpool"], "params": {"output_size": 3}},
        {"op": "set", "node": node["fc"], "params": {"in_features": 512 * 9}},
    ])
    assert edited["errors"] == []
    pytorch = flags_by_node(edited, "pytorch")
    assert set(pytorch) == {node["layer1.0.conv2"]} and pytorch[node["layer1.0.conv2"]]["level"] == "slow"
    assert "#70954" in pytorch[node["layer1.0.conv2"]]["source"]
    assert node["layer1.0.conv2"] in flags_by_node(edited, "onnxruntime")
    rknn = flags_by_node(edited, "rknn")
    assert rknn[node["layer2.0.conv2"]]["level"] == "unsupported"
    assert "kernel 1–31" in rknn[node["layer2.0.conv2"]]["message"]
    assert rknn["avgpool"]["level"] == "unsupported" and "multiple of the output size" in rknn["avgpool"]["message"]
    tensorrt = flags_by_node(edited, "tensorrt")
    assert {node["layer4.0.conv1"], node["layer4.0.conv2"]} <= set(tensorrt)  # 500 channels out, 500 in
    assert tensorrt[node["layer4.0.conv1"]]["level"] == "slow" and "multiples of 8" in \
        tensorrt[node["layer4.0.conv1"]]["message"]
    tflite = flags_by_node(edited, "tflite")
    assert [f["node"] for f in tflite.values() if f["level"] == "slow"] == ["layer3_0_leakyrelu_1"]
    assert flags_by_node(edited, "openvino").keys() == {"avgpool"}


def test_a_detectors_rows_are_checked_with_their_own_arguments():
    graph = yolo_graph(model_dict("yolov7-tiny", 3), build, 128, name="yolov7-tiny")
    rknn = flags_by_node(graph, "rknn")
    # The SPP block pools with kernels 5, 9 and 13: the NPU pools up to 7; the head's DFL is slow on the NPU.
    assert set(rknn) == {"32", "33", "77"}
    assert "an SPP's 9 or 13" in rknn["32"]["message"] and rknn["77"]["level"] == "slow"
    assert "rknn-toolkit2" in rknn["32"]["source"]
    tflite = flags_by_node(graph, "tflite")  # LeakyReLU everywhere, nearest upsampling in the neck
    assert tflite["39"]["message"].startswith("head.39 (Upsample): TensorFlow Lite resizes on its GPU delegate")
    assert tflite["0"]["message"].startswith("backbone.0 (Conv): TensorFlow Lite has this activation outside")
    assert engine_flags(graph, "tensorrt") == [] and engine_flags(graph, "pytorch") == []


def test_a_setting_outside_a_facts_range_is_not_flagged():
    assert layer_facts("rknn", "MaxPool2d", {"kernel_size": 7, "stride": 8, "padding": 3}, None) == []
    assert layer_facts("rknn", "Conv2d", {"kernel_size": [31, 1], "stride": 7, "padding": 15}, None) == []
    assert layer_facts("tensorrt", "Conv2d", {"in_channels": 3, "out_channels": 64}, [1, 3, 32, 32]) == []
    assert layer_facts("pytorch", "Conv2d", {"in_channels": 64, "groups": 64}, None) == []  # depthwise
    assert layer_facts("tflite", "Upsample", {"mode": "bilinear"}, None) == []


def palette_model() -> nn.Module:
    """One network holding every layer type of the palette (in the settings the zoo uses)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.ReLU6(), nn.LeakyReLU(0.1), nn.SiLU(),
        nn.GELU(), nn.Hardswish(), nn.Sigmoid(), nn.MaxPool2d(2, 2), nn.AvgPool2d(2, 2), nn.AdaptiveMaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Dropout(0.2), nn.Flatten(), nn.Linear(16, 5)).eval()


def test_the_palette_is_covered_by_the_model_the_engines_run():
    names = {type(m).__name__ for m in palette_model().modules()}
    assert set(PALETTE) <= names


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_engines_without_an_unsupported_fact_run_every_palette_layer(engine, tmp_path):
    from deployment.engine.onnx_export import export_onnx

    model = palette_model()
    assert not [f for f in LAYER_FACTS if engine in f.engines and f.level == "unsupported" and f.engines !=
                ONNX_ENGINES]
    path = export_onnx(model, input_size=16, path=tmp_path / "palette.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    if engine == "onnxruntime":
        import onnxruntime as ort

        out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    else:
        import openvino as ov

        # f32 as PyTorch computes (a CPU with bf16 instructions would otherwise run it in bf16)
        out = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(out, expected, atol=1e-4)
