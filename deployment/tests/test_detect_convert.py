"""Detection through the converters and the guard: int8 with the head kept in float, measured in mAP50 and
mAP50-95 against the PyTorch detector on its validation images (Django-free)."""

import numpy as np
import pytest

from deployment.engine.converters import registry
from deployment.engine.converters.onnxruntime import head_nodes, needs_reduced_range
from deployment.engine.guard import guarded_convert

from .detection_setup import detector_for_conversion


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return detector_for_conversion(tmp_path_factory)


def test_detection_is_judged_on_map50_and_map50_95(setup):
    source, validation, _ = setup
    reference = validation.evaluate(registry.load(registry.convert("pytorch", source, precision="fp32",
                                                                   out_dir=source.onnx_path.parent / "pt")))
    assert set(reference) == {"map50", "map50_95", "n_images"} and reference["map50"] >= reference["map50_95"] >= 0
    fp32 = registry.load(registry.convert("onnxruntime", source, precision="fp32", out_dir=source.onnx_path.parent))
    got = validation.evaluate(fp32)
    # The same graph in float: only near-ties at the 0.001 score floor may reorder (this detector is barely trained).
    assert all(abs(got[m] - reference[m]) <= 1.5 for m in ("map50", "map50_95"))


def test_detection_int8_keeps_the_head_in_float_when_asked(setup, tmp_path):
    # (OpenVINO's head-in-float, an NNCF ignored scope, runs in bench/engines.py: NNCF takes minutes here.)
    import onnx

    source, validation, calibration = setup
    artifact = registry.convert("onnxruntime", source, precision="int8", out_dir=tmp_path,
                                calibration=calibration.first(8), options={"head_in_float": True})
    kept = artifact.options["keep_float"]
    assert kept and artifact.load_check["output_shape"][1] == 4 + len(source.torch_model.names)
    head = head_nodes(onnx.load(str(source.onnx_path)))
    prefix = head[0].split("/")[1]  # "model.<last>"
    assert all(name.split("/")[1] == prefix for name in kept)
    quantised = onnx.load(str(artifact.path)).graph.node
    assert not [n for n in quantised if n.op_type == "QuantizeLinear" and n.name.split("/")[1:2] == [prefix]
                and n.input[0].startswith(f"/{prefix}/") and "Conv" in n.input[0]]
    out = registry.load(artifact)(next(calibration.arrays()))
    assert np.isfinite(out).all()


def test_detection_int8_keeps_only_the_decode_in_float_when_asked(setup, tmp_path):
    # The head's hidden convolutions (most of its arithmetic) get int8 weights; its 1x1 output convolutions, DFL,
    # box decode and the concat that makes the output stay float.
    import re

    import onnx

    source, _, calibration = setup
    artifact = registry.convert("onnxruntime", source, precision="int8", out_dir=tmp_path,
                                calibration=calibration.first(8), options={"decode_in_float": True})
    graph = onnx.load(str(artifact.path)).graph
    producer = {out: n for n in graph.node for out in n.output}
    head = [n for n in graph.node if n.name in set(head_nodes(onnx.load(str(source.onnx_path))))]
    hidden = [n for n in head if n.op_type == "Conv" and re.search(r"/cv[23]\.\d+\.[01]/", n.name)]
    outputs = [n for n in head if n.op_type == "Conv" and n.name.endswith(".2/Conv")]
    assert hidden and len(outputs) == 6  # box and class output convolution of each of the three levels

    def int8_weights(conv):
        return conv.input[1] in producer and producer[conv.input[1]].op_type == "DequantizeLinear"

    assert all(int8_weights(c) for c in hidden) and not any(int8_weights(c) for c in outputs)
    assert producer[graph.output[0].name].op_type != "DequantizeLinear"  # the output itself is not quantised
    assert set(artifact.options["keep_float"]) >= {c.name for c in outputs}
    out = registry.load(artifact)(next(calibration.arrays()))
    assert np.isfinite(out).all() and out.shape[1] == 4 + len(source.torch_model.names)


def test_onnxruntime_runs_a_detector_at_batch_one_with_its_shape_arithmetic_folded(setup, tmp_path):
    # The export's free batch axis makes the C3k2 chunks and the decode compute shapes at run time (Shape, Gather,
    # Unsqueeze, Concat, Range...): ONNX Runtime's artifacts are fixed at batch 1 with that arithmetic folded, and
    # still give PyTorch's output, a batch of several images included (the runner feeds them one at a time).
    import onnx
    import torch

    source, validation, calibration = setup
    exported = onnx.load(str(source.onnx_path)).graph.node
    assert any(n.op_type == "Shape" for n in exported)
    fp32 = registry.convert("onnxruntime", source, precision="fp32", out_dir=tmp_path / "fp32")
    graph = onnx.load(str(fp32.path)).graph
    assert not [n for n in graph.node if n.op_type in ("Shape", "Gather", "Unsqueeze", "Range", "ConstantOfShape")]
    assert len(graph.node) < len(exported) and graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert "folded" in fp32.options["graph"] and fp32.files == [fp32.path]
    # the DFL's softmax runs on the last axis (ONNX Runtime transposes for any other), its 1x1 conv a MatMul
    softmax = [n for n in graph.node if n.op_type == "Softmax" and "/dfl/" in n.name]
    assert softmax and all(a.i == 3 for n in softmax for a in n.attribute if a.name == "axis")
    assert not [n for n in graph.node if n.op_type == "Conv" and "/dfl/" in n.name]
    batch = np.stack([validation.prepared()[i][0] for i in range(3)])
    with torch.inference_mode():
        want = source.torch_model(torch.from_numpy(batch))
    want = (want[0] if isinstance(want, (list, tuple)) else want).numpy()
    got = registry.load(fp32, threads=1)(batch)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-3 * max(1.0, float(np.abs(want).max()))
    int8 = registry.convert("onnxruntime", source, precision="int8", out_dir=tmp_path / "int8",
                            calibration=calibration.first(8), options={"decode_in_float": True})
    assert not [n for n in onnx.load(str(int8.path)).graph.node if n.op_type == "Shape"]
    assert [p.name for p in (tmp_path / "int8").iterdir()] == [int8.path.name]
    assert registry.load(int8, threads=1)(batch).shape == want.shape


def test_int8_weights_use_seven_bits_on_x86_without_vnni():
    # VPMADDUBSW saturates on AVX2-only CPUs (ONNX Runtime's documented caveat); VNNI and AMX do not, nor Arm.
    assert needs_reduced_range(frozenset({"avx", "avx2", "fma"}))
    assert not needs_reduced_range(frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert not needs_reduced_range(frozenset({"avx2", "avx_vnni"}))
    assert not needs_reduced_range(frozenset({"asimd", "asimddp"}))


def test_the_guard_passes_or_falls_back_on_a_detector(setup, tmp_path):
    source, validation, calibration = setup
    reference = validation.evaluate(registry.load(registry.convert("onnxruntime", source, precision="fp32",
                                                                   out_dir=tmp_path / "ref")))
    outcome = guarded_convert("onnxruntime", source, precision="int8", out_dir=tmp_path, validation=validation,
                              reference=reference, calibration=calibration.first(8), tolerance=1.0)
    assert outcome.passed and outcome.attempts[-1].drop <= 1.0
    steps = [a.step for a in outcome.attempts]
    assert steps[0] == "as asked" and (len(steps) == 1 or steps[1] == "detection decode kept in float")


def test_tvm_imports_the_detector_at_a_static_batch_of_one_and_matches_pytorch(setup, tmp_path):
    """The export keeps a free batch axis; the C3k2 blocks' and the head's shape arithmetic then made TVM's Relax
    frontend fail ("shape_of expects a tensor input"). TVM imports it fixed at batch 1, that arithmetic folded."""
    from deployment.engine.converters.tvm import TvmConverter

    if TvmConverter().missing():
        pytest.skip("apache-tvm is not installed")
    import torch

    source, validation, _ = setup
    artifact = registry.convert("tvm", source, precision="fp32", out_dir=tmp_path)
    batch = np.stack([validation.prepared()[i][0] for i in range(3)])
    got = registry.load(artifact, threads=1)(batch)
    with torch.inference_mode():
        want = source.torch_model(torch.from_numpy(batch))
    want = (want[0] if isinstance(want, (list, tuple)) else want).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, float(np.abs(want).max()))
