"""Graph clean-ups on the verified ONNX file that converters share, before they quantise or compile it.
Django-free.

A detector's export keeps a free batch axis, so the graph computes with its own shapes at run time: YOLO11's C3k2
blocks split their channels through Shape -> Gather -> Div -> Slice, and the Detect head's decode reshapes its
outputs through Shape -> Gather -> Unsqueeze -> Concat -> Reshape, the anchors through Range/Expand. On the
detection demo (YOLO11n at 128 px) that is 354 of the graph's 682 nodes; ONNX Runtime runs each as a kernel of its
own at every inference (and in int8, quantises around them). Fixed at batch 1 every shape is a constant, and ONNX
Runtime's basic graph optimisation (constant folding and redundant-node removal, standard ONNX operators only, so
the file stays portable) computes that arithmetic once: 328 nodes are left, the same outputs.

The head's DFL (distribution focal loss) decode then takes a softmax over the 16 bins of each box side on axis 1 of
a (1, 16, 4, anchors) tensor and a 1x1 convolution with weights 0..15 (the expected bin). ONNX Runtime computes a
softmax on any axis but the last by transposing to it and back: on the demo detector that one node cost more than
any convolution of the head (~6% of the int8 model's time). `dfl_on_last_axis` transposes to (1, 4, anchors, 16)
instead, where the softmax runs in place, and the convolution becomes the MatMul with the bins it is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def static_batch_one(model, input_size: int):
    """The ONNX model with its input fixed at (1, 3, S, S) and its shape arithmetic folded into constants (an
    onnx.ModelProto in, a new one out; the model as it is, at batch 1, if ONNX Runtime will not optimise it).

    TVM needs it too: its Relax frontend turns Shape into a shape value, not a tensor, and fails on the Gather
    after it ("shape_of expects a tensor input")."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {i.name for i in model.graph.initializer}
    for value in [i for i in model.graph.input if i.name not in initializers]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.dim_value:
                dim.ClearField("dim_param")
                dim.dim_value = 1 if axis == 0 else (3 if axis == 1 else input_size)
    for value in model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    del model.graph.value_info[:]  # inferred with a symbolic batch: inferred again, static
    with tempfile.TemporaryDirectory(prefix="tango-static-") as tmp:
        static, folded = Path(tmp) / "static.onnx", Path(tmp) / "folded.onnx"
        onnx.save(model, str(static))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(str(static), options, providers=["CPUExecutionProvider"])
            return onnx.load(str(folded))
        except Exception:  # a graph ONNX Runtime will not optimise: the static one as it is
            return onnx.load(str(static))


def fixed_batch(onnx_path: Path) -> int | None:
    """The batch size the file's image input is fixed at (None: a free batch axis)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    dims = [i for i in model.graph.input if i.name not in initializers][0].type.tensor_type.shape.dim
    return dims[0].dim_value or None if dims else None


def dfl_on_last_axis(model):
    """The DFL softmax on the last axis (see the module's doc): Transpose(0, 2, 1, 3) -> Softmax(axis 1) ->
    Conv(1x1, 16 -> 1, no bias) becomes Transpose(0, 1, 3, 2) -> Softmax(last axis) -> MatMul(bins). Returns (the
    model, how many were rewritten); a graph without that pattern comes back as it is."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {i.name: i for i in graph.initializer}
    rewritten = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
        transpose = producer.get(softmax.input[0])
        after = consumers.get(softmax.output[0], [])
        if axis != 1 or transpose is None or transpose.op_type != "Transpose" or len(after) != 1:
            continue
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        conv = after[0]
        if perm != [0, 2, 1, 3] or len(consumers.get(transpose.output[0], [])) != 1 or conv.op_type != "Conv" \
                or len(conv.input) != 2 or conv.input[1] not in weights:
            continue
        kernel = numpy_helper.to_array(weights[conv.input[1]])
        if kernel.ndim != 4 or kernel.shape[0] != 1 or kernel.shape[2:] != (1, 1):
            continue
        transpose.ClearField("attribute")
        transpose.attribute.append(helper.make_attribute("perm", [0, 1, 3, 2]))
        softmax.ClearField("attribute")
        softmax.attribute.append(helper.make_attribute("axis", 3))
        bins = conv.input[1] + "_as_matmul"
        graph.initializer.append(numpy_helper.from_array(kernel.reshape(-1, 1).astype(np.float32), bins))
        matmul = helper.make_node("MatMul", [softmax.output[0], bins], list(conv.output), name=conv.name + "_matmul")
        graph.node.insert(list(graph.node).index(conv), matmul)
        graph.node.remove(conv)
        if not any(conv.input[1] in n.input for n in graph.node):
            graph.initializer.remove(weights.pop(conv.input[1]))
        rewritten += 1
    if rewritten:
        del graph.value_info[:]
        onnx.checker.check_model(model)
    return model, rewritten


def same_outputs(a, b, input_size: int, *, tolerance: float = 1e-4) -> bool:
    """Whether two batch-1 ONNX models give the same first output on a random image (ONNX Runtime, CPU)."""
    import numpy as np
    import onnxruntime as ort

    image = np.random.default_rng(0).random((1, 3, input_size, input_size), dtype=np.float32)
    outputs = []
    for model in (a, b):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: image})[0])
    scale = max(1.0, float(np.abs(outputs[0]).max()))
    return outputs[0].shape == outputs[1].shape and float(np.abs(outputs[0] - outputs[1]).max()) <= tolerance * scale


def write_static_detector(src: Path, dst: Path, input_size: int) -> dict:
    """dst: the detector at batch 1, its shape arithmetic folded (static_batch_one) and its DFL softmax on the last
    axis (dfl_on_last_axis, kept only where ONNX Runtime gives the same output); the node counts before and after
    and what was rewritten, for the artifact's report."""
    import onnx

    model = onnx.load(str(src))
    static = static_batch_one(model, input_size)
    rewritten, count = dfl_on_last_axis(static)
    if count and not same_outputs(static, rewritten, input_size):
        count = 0
    final = rewritten if count else static
    onnx.save(final, str(dst))
    return {"nodes_before": len(model.graph.node), "nodes_after": len(final.graph.node), "dfl_rewritten": count}
