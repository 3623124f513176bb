"""Runs inside the TFLite side environment (TensorFlow 2.19 + onnx2tf, their own numpy/onnx pins), never in the
portal's.

    python tflite_build.py job.json

job: {"onnx": path, "out": path.tflite, "precision": "fp32" | "fp16" | "int8", "input": name,
      "calibration": path of (N, S, S, 3) float32 .npy (int8 only; already normalised, so mean 0 and std 1),
      "check": path of (N, 3, S, S) .npy, "check_out": path where the interpreter's outputs (N, ...) are written}

onnx2tf turns the ONNX graph into a TensorFlow SavedModel with NHWC layout and has the TFLite converter write
fp32 and fp16 (weights in half); int8 is TensorFlow Lite's full integer quantisation of that SavedModel, calibrated
on the project's images (int8 weights and activations, float32 input and output). The file is then opened by the
TFLite interpreter and run on the check images. The last stdout line is the JSON report.
"""

import contextlib
import glob
import io
import json
import os
import shutil
import sys
import tempfile
import time

OUTPUT_SUFFIX = {"fp32": "_float32.tflite", "fp16": "_float16.tflite", "int8": "_integer_quant.tflite"}  # onnx2tf's


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


def quantize_int8(saved_model: str, calibration, out: str) -> str:
    """TensorFlow Lite's full integer post-training quantisation of onnx2tf's SavedModel (what onnx2tf's own
    `*_integer_quant.tflite` is, without the four other variants it would also build): int8 weights (per
    channel) and activations, calibrated on the project's images (NHWC, already normalised); float32 in and out."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([item[None]] for item in calibration)
    with open(out, "wb") as file:
        file.write(converter.convert())
    return out


def main(job_path: str) -> dict:
    import numpy as np
    import onnx2tf

    job = json.loads(open(job_path).read())
    precision = job["precision"]
    work = tempfile.mkdtemp(prefix="onnx2tf-")
    log = io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            # onnx2tf: ONNX -> TensorFlow (NHWC) -> SavedModel with its signature, float32 and float16 .tflite
            onnx2tf.convert(
                input_onnx_file_path=job["onnx"],
                output_folder_path=work,
                non_verbose=True,
                copy_onnx_input_output_names_to_tflite=True,
                output_signaturedefs=precision == "int8",
            )
            stem = os.path.splitext(os.path.basename(job["onnx"]))[0]
            written = os.path.join(work, stem + OUTPUT_SUFFIX[precision])
            if precision == "int8":
                written = quantize_int8(work, np.load(job["calibration"]).astype(np.float32), written)
        if not os.path.exists(written):
            found = ", ".join(sorted(os.path.basename(p) for p in glob.glob(os.path.join(work, "*.tflite"))))
            return {
                "error": f"onnx2tf reported no error but wrote no {precision} file (found: {found or 'none'}): "
                + log.getvalue()[-600:]
            }
        shutil.copyfile(written, job["out"])
    except BaseException as error:  # onnx2tf ends with sys.exit(1) on some errors: its own message and log tail
        if isinstance(error, KeyboardInterrupt):
            raise
        return {"error": f"onnx2tf failed: {type(error).__name__}: {str(error)[:500]} " + log.getvalue()[-400:]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    built = time.monotonic() - started
    interp = interpreter(job["out"])
    interp.allocate_tensors()
    details = interp.get_input_details()[0]
    outputs = run_nchw(interp, np.load(job["check"]).astype(np.float32))
    np.save(job["check_out"], outputs)
    import importlib.metadata as metadata

    return {
        "ok": True,
        "build_seconds": round(built, 1),
        "checked": len(outputs),
        "input_shape": [int(d) for d in details["shape"]],
        "input_dtype": str(details["dtype"].__name__),
        "interpreter": type(interp).__module__.split(".")[0],
        "versions": {
            p: metadata.version(p)
            for p in ("onnx2tf", "tensorflow-cpu", "ai-edge-litert", "onnx", "numpy")
            if _installed(p)
        },
    }


def _installed(package: str) -> bool:
    import importlib.metadata as metadata

    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    try:
        report = main(sys.argv[1])
    except Exception as error:  # noqa: BLE001 - the portal reads the reason from the JSON line
        report = {"error": f"{type(error).__name__}: {error}"[:1500]}
    sys.stdout.flush()
    print(json.dumps(report), flush=True)
