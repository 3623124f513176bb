"""Runs inside the RKNN side environment (rknn-toolkit2 2.3.x, its own numpy/onnx pins), never in the portal's.

    python rknn_build.py job.json

job: {"onnx": path, "out": path.rknn, "platform": "rk3588", "precision": "int8" | "fp16", "input": name,
      "input_size": S, "calibration": [paths of (1, 3, S, S) float32 .npy], "check": path of (N, 3, S, S) .npy,
      "check_out": path where the simulator's outputs (N, ...) are written}
The model's input is already normalised (mean 0, std 1 here). The last stdout line is the JSON report.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import time


def main(job_path: str) -> dict:
    import numpy as np
    from rknn.api import RKNN

    job = json.loads(open(job_path).read())
    size = int(job["input_size"])
    log = io.StringIO()
    rknn = RKNN(verbose=False)
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(log):
            rknn.config(mean_values=[[0, 0, 0]], std_values=[[1, 1, 1]], target_platform=job["platform"],
                        quantized_dtype="w8a8", optimization_level=3)
            if rknn.load_onnx(model=job["onnx"], inputs=[job["input"]], input_size_list=[[1, 3, size, size]]):
                return {"error": "rknn-toolkit2 could not load the ONNX model: " + log.getvalue()[-600:]}
            quantize = job["precision"] == "int8"
            dataset = None
            if quantize:
                dataset = os.path.join(tempfile.mkdtemp(), "dataset.txt")
                with open(dataset, "w") as listing:
                    listing.write("\n".join(job["calibration"]) + "\n")
            if rknn.build(do_quantization=quantize, dataset=dataset):
                return {"error": "rknn-toolkit2 build failed: " + log.getvalue()[-600:]}
            if rknn.export_rknn(job["out"]):
                return {"error": "rknn-toolkit2 could not write the .rknn file: " + log.getvalue()[-600:]}
            built = time.monotonic() - started
            if rknn.init_runtime():  # no target: the toolkit's x86 simulator
                return {"error": "the RKNN simulator did not start: " + log.getvalue()[-600:]}
            batch = np.load(job["check"]).astype(np.float32)
            outputs = []
            for item in batch:
                result = rknn.inference(inputs=[item[None]], data_format="nchw")
                outputs.append(np.asarray(result[0]).reshape(-1))
            np.save(job["check_out"], np.stack(outputs))
    finally:
        rknn.release()
    import importlib.metadata as metadata

    return {"ok": True, "build_seconds": round(built, 1), "simulated": len(outputs),
            "versions": {p: metadata.version(p) for p in ("rknn-toolkit2", "onnx", "onnxruntime", "numpy")}}


if __name__ == "__main__":
    try:
        report = main(sys.argv[1])
    except Exception as error:  # noqa: BLE001 - the portal reads the reason from the JSON line
        report = {"error": f"{type(error).__name__}: {error}"[:1500]}
    sys.stdout.flush()
    print(json.dumps(report), flush=True)
