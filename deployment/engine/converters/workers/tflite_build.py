"""Runs inside the TFLite side environment (TensorFlow 2.19 + onnx2tf, their own numpy/onnx pins), never in the
portal's.

    python tflite_build.py job.json
    python tflite_build.py --serve model.onnx     (many jobs on one ONNX file: see serve())

job: {"onnx": path, "out": path.tflite, "precision": "fp32" | "fp16" | "int8", "input": name,
      "calibration": path of (N, S, S, 3) float32 .npy (int8 only; already normalised, so mean 0 and std 1),
      "check": path of (N, 3, S, S) .npy, "check_out": path where the interpreter's outputs (N, ...) are written}

      "head_in_float": bool (int8 of a detector: the detection head's ops stay float32)}

The portal's ONNX has a dynamic batch axis, so its shape arithmetic (a YOLO C3k2 block's chunk is Shape -> Gather
-> Div -> Slice) is computed at run time and onnx2tf sees channel counts it cannot know: it then guesses the
NCHW -> NHWC transposition wrong (YOLO11n: "Dimensions must be equal, but are 32 and 16" at /model.2/m.0/Add, one
side NHWC, the other not). The file is therefore fixed at batch 1 (the .tflite runs batch 1 anyway) and simplified
by onnxsim first, which folds that arithmetic into constants: every shape is then static and onnx2tf's layout
tracking holds. onnx2tf's strict mode (a per-op accuracy correction against ONNX Runtime) is switched off, which
onnx2tf documents as much faster: the portal checks the file against PyTorch itself, and the accuracy guard after.

onnx2tf turns the graph into a Keras model of TensorFlow ops with NHWC layout; the TFLite converter writes the one
file asked from its concrete function: fp32, fp16 (weights in half) or int8, TensorFlow Lite's full integer
quantisation calibrated on the project's images (int8 weights and activations, float32 input and output). A
detector's output puts boxes in input pixels and class scores in [0, 1] into one tensor, which one int8 scale cannot
hold: with head_in_float the head's ops (its convolutions, found by their weights, and everything after them) are
kept in float32. The file is then opened by the TFLite interpreter and run on the check images. The last stdout
line is the JSON report.
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time


def interpreter(path: str, threads: int = 1):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite.python.interpreter import Interpreter
    return Interpreter(model_path=path, num_threads=threads)


def run_nchw(interp, batch):
    """(N, 3, S, S) float32 -> outputs (N, ...) through a batch-1 interpreter whose input is NHWC or NCHW."""
    import numpy as np

    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    nhwc = inp["shape"][-1] == 3 and batch.shape[1] == 3
    results = []
    for item in batch:
        x = item.transpose(1, 2, 0)[None] if nhwc else item[None]
        interp.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=np.float32))
        interp.invoke()
        results.append(np.array(interp.get_tensor(out["index"])))
    return np.concatenate(results)


def static_onnx(src: str, dst: str) -> str:
    """The ONNX file at batch 1 with its shape arithmetic folded into constants (onnxsim), for onnx2tf."""
    import onnx
    from onnxsim import simplify

    model = onnx.load(src)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    del model.graph.value_info[:]  # shapes inferred with a symbolic batch: let onnxsim infer them again
    simplified, ok = simplify(model)
    model = simplified if ok else model
    zero_padded_pools(model)
    onnx.save(model, dst)
    return dst


# ops whose outputs are never negative: a max-pool over them loses nothing when its border is padded with zeros
NON_NEGATIVE = ("Relu",)


def zero_padded_pools(model) -> int:
    """A padded MaxPool that reads a ReLU's output gets its padding as an explicit Pad with zeros in front of it
    (in place; returns how many). onnx2tf pads a max-pool whose ONNX padding TensorFlow's SAME cannot express
    (ResNet's stem: 3x3, stride 2, pads 1 on an even size puts SAME's one pixel at the end only) with an explicit
    PadV2 of float32's lowest value, -3.4e38. TFLite's int8 quantisation gives a Pad one scale for its input and
    output, so it calibrates the ReLU before it on [-3.4e38, max]: ResNet-18's stem convolution got the scale 1.3e36
    (zero point 127), its requantisation scale fell out of the range XNNPACK accepts ("Node number 39
    (TfLiteXNNPackDelegate) failed to prepare"), TFLite's own kernels abort on it, and the accuracy guard fell back to
    fp16. onnx2tf pads with 0 itself when it quantises (its issue 444); over a ReLU's output that is exact: every
    window holds at least one real value, and none is below 0."""
    import onnx
    from onnx import helper

    producer = {output: node for node in model.graph.node for output in node.output}
    nodes, changed = [], 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        pads = list(attrs.get("pads") or [])
        source = producer.get(node.input[0]) if node.input else None
        if (node.op_type != "MaxPool" or not any(pads) or attrs.get("ceil_mode") or attrs.get("auto_pad", b"NOTSET")
                not in (b"NOTSET", "NOTSET") or source is None or source.op_type not in NON_NEGATIVE):
            nodes.append(node)
            continue
        half = len(pads) // 2  # ONNX pads: every spatial axis's begin, then every end; Pad's: every axis's
        name = f"{node.name or node.output[0]}/zero_pad"
        widths = helper.make_tensor(f"{name}/pads", onnx.TensorProto.INT64, [2 * (half + 2)],
                                    [0, 0, *pads[:half], 0, 0, *pads[half:]])
        model.graph.initializer.append(widths)
        nodes.append(helper.make_node("Pad", [node.input[0], widths.name], [f"{name}/out"], name=name,
                                      mode="constant"))
        node.input[0] = f"{name}/out"
        for attribute in node.attribute:
            if attribute.name == "pads":
                attribute.ints[:] = [0] * len(pads)
        nodes.append(node)
        changed += 1
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return changed


def head_tensor_names(onnx_path: str, tflite_path: str) -> list[str]:
    """Output tensor names of a YOLO detection head's ops in onnx2tf's float32 file: the head's convolutions (the
    ONNX nodes of the highest-numbered ultralytics layer, "/model.<last>/…") found in the .tflite by their bias
    values, plus every op downstream of them (the decode: DFL, anchors, sigmoid, concat). [] for other graphs."""
    import re

    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(onnx_path)
    layers = [int(m.group(1)) for n in model.graph.node if (m := re.match(r"^/model\.(\d+)/", n.name))]
    if not layers:
        return []
    prefix = f"/model.{max(layers)}/"
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    head_biases = [
        np.asarray(weights[n.input[2]], dtype=np.float32).ravel()
        for n in model.graph.node
        if n.op_type == "Conv" and n.name.startswith(prefix) and len(n.input) > 2 and n.input[2] in weights
    ]
    interp = interpreter(tflite_path)
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    seeds = set()
    for op in ops:
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op["inputs"]) < 3 or op["inputs"][2] < 0:
            continue
        try:
            bias = np.asarray(interp.get_tensor(int(op["inputs"][2])), dtype=np.float32).ravel()
        except ValueError:
            continue
        if any(b.shape == bias.shape and np.allclose(b, bias, atol=1e-5) for b in head_biases):
            seeds.add(op["index"])
    if not seeds:
        return []
    # everything downstream of the head's convolutions
    consumers: dict[int, list[int]] = {}
    for op in ops:
        for tensor in op["inputs"]:
            consumers.setdefault(int(tensor), []).append(op["index"])
    head, todo = set(seeds), list(seeds)
    while todo:
        for tensor in ops[todo.pop()]["outputs"]:
            for follower in consumers.get(int(tensor), []):
                if follower not in head:
                    head.add(follower)
                    todo.append(follower)
    return sorted({tensors[int(t)]["name"] for index in head for t in ops[index]["outputs"]})


ABSURD_SCALE = 1e6  # an int8 activation this coarse spans more than ±1e8: no calibrated ReLU or sum is that wide


def unpreparable(path: str) -> str:
    """Why an int8 file does not prepare, in words: the first op whose output int8 calibration gave an absurd scale,
    and the max-pool padding behind it where there is one (read without preparing the file: TFLite's own kernels
    abort the process on it). "" when no tensor has such a scale."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        from tensorflow.lite.python.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()

    def scale(op) -> float:
        return max((float(s.max()) for i in op["outputs"]
                    if len(s := tensors[int(i)]["quantization_parameters"]["scales"])), default=0.0)

    absurd = [op for op in ops if scale(op) > ABSURD_SCALE]
    if not absurd:
        return ""
    first = absurd[0]
    why = (f"Its int8 calibration gave op {first['index']} ({first['op_name']}, output "
           f"{tensors[int(first['outputs'][0])]['name']!r}) the scale {scale(first):.3g}, which no int8 kernel can "
           "requantise")
    pad = next((op for op in absurd if op["op_name"] == "PADV2"), None)
    pool = pad and next((op for op in ops if int(pad["outputs"][0]) in map(int, op["inputs"])), None)
    if pool is not None:
        why += (f": op {pad['index']} (PADV2) pads that tensor for op {pool['index']} ({pool['op_name']}) with "
                "float32's lowest value (onnx2tf, for padding TensorFlow's SAME cannot express), and a pad shares its "
                "input's scale; the build pads with zeros instead only where the pool reads a ReLU's output")
    return why + "."


def write_tflite(model, precision: str, out: str, *, calibration=None, keep_float=()) -> str:
    """One .tflite file from onnx2tf's Keras model, through its concrete function (as onnx2tf's own fallback does).
    fp32; fp16: weights in half; int8: TensorFlow Lite's full integer post-training quantisation, int8 weights (per
    channel) and activations calibrated on the project's images (NHWC, already normalised), float32 in and out.
    keep_float: tensor names whose ops stay float32 (TFLite's quantisation debugger builds that mixed file)."""
    import tensorflow as tf

    function = tf.function(
        lambda *inputs: model(inputs),
        input_signature=[tf.TensorSpec(t.shape, t.dtype) for t in model.inputs],
    ).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([item[None]] for item in calibration)
        if keep_float:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=lambda: ([item[None]] for item in calibration[:1]),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(keep_float)),
            )
            data = debugger.get_nondebug_quantized_model()
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            data = converter.convert()
    else:
        data = converter.convert()
    with open(out, "wb") as file:
        file.write(data)
    return out


def offline_sample_data(check):
    """onnx2tf feeds 20 sample images (128 px, NHWC) to its per-op ONNX/TF comparison and downloads MS-COCO ones
    from GitHub for that; this server is offline: our own check images stand in (values as the model takes them)."""
    import numpy as np

    nhwc = check.transpose(0, 2, 3, 1)
    rows = (np.arange(128) * nhwc.shape[1] // 128)[:, None]
    cols = (np.arange(128) * nhwc.shape[2] // 128)[None, :]
    small = nhwc[:, rows, cols, :]
    return np.ascontiguousarray(np.resize(small, (20, 128, 128, small.shape[-1])), dtype=np.float32)


def prepare(onnx_path: str, work: str, check, log):
    """(static ONNX path, onnx2tf's Keras model): the expensive part, done once per ONNX file."""
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        # before TensorFlow is imported: onnxsim crashes (SIGSEGV) in a process that has loaded it
        static = static_onnx(onnx_path, os.path.join(work, "model.onnx"))
        import onnx2tf
        import onnx2tf.onnx2tf as onnx2tf_main

        onnx2tf_main.download_test_image_data = lambda: offline_sample_data(check)
        # onnx2tf: ONNX -> a Keras model of TensorFlow ops in NHWC. Nothing saved: its own float32/float16 files
        # go through TFLiteConverter.from_keras_model, which serialises every layer's config (weights included,
        # as JSON lists) into a SavedModel first, twice, and that was ~95% of a ResNet-18 conversion here
        # (cProfile: tf_keras saved_model json_utils). The TFLite converter runs on its concrete function instead.
        model = onnx2tf.convert(
            input_onnx_file_path=static,
            output_folder_path=work,
            non_verbose=True,
            not_use_onnxsim=True,  # simplified above, at batch 1
            disable_strict_mode=True,
            disable_model_save=True,
        )
    return static, model


def build(job: dict, static: str, model, work: str, log, *, converted_s: float) -> dict:
    """One .tflite file of the job's precision from onnx2tf's model, opened by the interpreter and run on the check
    images."""
    import numpy as np

    precision = job["precision"]
    started = time.monotonic()
    kept_float: list[str] = []
    written = os.path.join(work, f"model-{precision}.tflite")
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            calibration = np.load(job["calibration"]).astype(np.float32) if precision == "int8" else None
            if precision == "int8" and job.get("head_in_float"):
                float_file = os.path.join(work, "float32.tflite")
                write_tflite(model, "fp32", float_file)
                kept_float = head_tensor_names(static, float_file)
                if not kept_float:
                    return {"error": "head_in_float: no detection head found in this graph"}
            write_tflite(model, precision, written, calibration=calibration, keep_float=kept_float)
        if not os.path.exists(written):
            return {"error": f"the TFLite converter wrote no {precision} file: " + log.getvalue()[-600:]}
        shutil.copyfile(written, job["out"])
        os.unlink(written)
    except BaseException as error:  # the converter may end with sys.exit(1): its own message and log tail
        if isinstance(error, KeyboardInterrupt):
            raise
        return {"error": f"the TFLite converter failed: {type(error).__name__}: {str(error)[:500]} "
                         + log.getvalue()[-400:]}
    built = converted_s + time.monotonic() - started
    check = np.load(job["check"]).astype(np.float32)
    interp = interpreter(job["out"])
    try:
        interp.allocate_tensors()
    except RuntimeError as error:  # XNNPACK's "Node number N (TfLiteXNNPackDelegate) failed to prepare" names no op
        raise RuntimeError(f"{error} {unpreparable(job['out'])}".strip()) from None
    details = interp.get_input_details()[0]
    outputs = run_nchw(interp, check)
    np.save(job["check_out"], outputs)
    import importlib.metadata as metadata

    return {
        "ok": True,
        "build_seconds": round(built, 1),
        "onnx2tf_seconds": round(converted_s, 1),
        "checked": len(outputs),
        "input_shape": [int(d) for d in details["shape"]],
        "input_dtype": str(details["dtype"].__name__),
        "interpreter": type(interp).__module__.split(".")[0],
        "kept_float": len(kept_float),
        "versions": {
            p: metadata.version(p)
            for p in ("onnx2tf", "tensorflow-cpu", "ai-edge-litert", "onnx", "onnxsim", "numpy")
            if _installed(p)
        },
    }


def main(job_path: str) -> dict:
    """One job: onnx2tf, then the file."""
    import numpy as np

    job = json.loads(open(job_path).read())
    work = tempfile.mkdtemp(prefix="onnx2tf-")
    log = io.StringIO()
    started = time.monotonic()
    try:
        try:
            static, model = prepare(job["onnx"], work, np.load(job["check"]).astype(np.float32), log)
        except BaseException as error:  # onnx2tf ends with sys.exit(1) on some errors: its own message and log tail
            if isinstance(error, KeyboardInterrupt):
                raise
            return {"error": f"onnx2tf failed: {type(error).__name__}: {str(error)[:500]} " + log.getvalue()[-400:]}
        return build(job, static, model, work, log, converted_s=time.monotonic() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def serve(onnx_path: str) -> int:
    """Many jobs on one ONNX file: onnx2tf runs once (on the first job), each job after that only writes its file.
    The accuracy guard's fallbacks (int8 as asked, the head in float, more calibration images, fp16) and the other
    precisions of the same model then cost a TFLite conversion each, not an onnx2tf run each.

    Protocol: one line per job on stdin (the path of its job JSON), one JSON line back per job on the original
    stdout; everything else anything prints goes to stderr. End of input ends the process."""
    import numpy as np

    answer = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # TensorFlow's and onnx2tf's own printing must not reach the protocol
    sys.stdout = sys.stderr
    work = tempfile.mkdtemp(prefix="onnx2tf-")
    prepared = None
    converted_s = 0.0
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            log = io.StringIO()
            try:
                job = json.loads(open(line.strip()).read())
                if job["onnx"] != onnx_path:
                    result = {"error": f"this builder converts {onnx_path}, not {job['onnx']}"}
                else:
                    if prepared is None:
                        started = time.monotonic()
                        try:
                            prepared = prepare(onnx_path, work, np.load(job["check"]).astype(np.float32), log)
                        except BaseException as error:
                            if isinstance(error, KeyboardInterrupt):
                                raise
                            answer.write(json.dumps({"error": f"onnx2tf failed: {type(error).__name__}: "
                                                              f"{str(error)[:500]} " + log.getvalue()[-400:]})
                                         + "\n")
                            return 1
                        converted_s = time.monotonic() - started
                        result = build(job, *prepared, work, log, converted_s=converted_s)
                    else:
                        result = build(job, *prepared, work, log, converted_s=0.0)
                        result["onnx2tf_reused"] = True
            except Exception as error:  # noqa: BLE001 - the portal reads the reason
                result = {"error": f"{type(error).__name__}: {error}"[:1500]}
            answer.write(json.dumps(result) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _installed(package: str) -> bool:
    import importlib.metadata as metadata

    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        sys.exit(serve(sys.argv[2]))
    try:
        report = main(sys.argv[1])
    except Exception as error:  # noqa: BLE001 - the portal reads the reason from the JSON line
        report = {"error": f"{type(error).__name__}: {error}"[:1500]}
    sys.stdout.flush()
    print(json.dumps(report), flush=True)
