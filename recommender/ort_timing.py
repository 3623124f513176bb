"""Time a zoo model with ONNX Runtime on this server (batch 1): the calibrate command's and the bench's probe.

A small local helper until deployment's measure API times untrained candidates: the weights of a freshly built
model do not change its latency. Export goes through deployment's exporters (classification and detection), so the
graph is the one a deployment runs. The timing itself runs in a fresh Python process that imports only ONNX
Runtime: its peak resident memory above its own baseline is the model's memory, not whatever an earlier candidate
left in the allocator (deployment.engine.timing.PeakMemory, the benchmark stage's own reading).

How a latency is measured: deployment.engine.timing.time_runs, the benchmark stage's own routine (one intra-op and
one inter-op thread, sequential execution, OMP/MKL pinned to one; warm-up until stable; process CPU time; the median
over blocks of each block's 25th percentile). The child imports that module alone beside ONNX Runtime, so a
calibrate record, a benchmark-stage record and the bench's figures are measured the same way. The wall-clock
median is kept beside it.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tango_common.processes import one_thread_child_env

# Runs in the child process: stdlib, numpy, onnxruntime and deployment.engine.timing (stdlib) only.
_CHILD = r"""
import json, statistics, sys
import numpy as np
import onnxruntime as ort
from deployment.engine.timing import METHOD, PeakMemory, session_options, time_runs

path, size = sys.argv[1], int(sys.argv[2])
reference, ref_size = (sys.argv[3], int(sys.argv[4])) if len(sys.argv) > 4 else (None, 0)
options = session_options(ort, threads=1)

def load(model_path, side):
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)}
    return lambda: session.run(None, feed)

peak = PeakMemory().start()
model = load(path, size)
model()
memory_mb = peak.mb()  # the model's load and first run, before a reference network is loaded beside it
ref = load(reference, ref_size) if reference else None
timing = time_runs(model, reference=ref)
out = {"latency_ms": timing["latency_ms"], "latency_median_ms": statistics.median(timing["cpu_ms"]),
       "latency_wall_ms": statistics.median(timing["wall_ms"]), "runs": timing["runs"],
       "warmup_runs": timing["warmup_runs"], "block_ms": timing["block_ms"], "threads": 1, "timing": METHOD,
       "memory_mb": memory_mb}
if ref:
    out["reference_ms"] = timing["reference_ms"]
    out["relative_to_reference"] = timing["relative_to_reference"]
print(json.dumps(out))
"""


def time_zoo_model(model_name: str, *, num_classes: int, input_size: int, folder: Path | None = None) -> dict:
    """Build, export to ONNX and time one model. Returns latency (ms: deployment.engine.timing's CPU-time figure),
    the median and the wall-clock median beside it, memory (MiB) and the architecture signature. The export goes to
    folder (a job's) and is removed once timed; to a temporary folder when None."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        path, signature = export_zoo_model(model_name, num_classes=num_classes, input_size=input_size,
                                           folder=Path(scratch))
        result = time_onnx(path, input_size=input_size)
    return {**result, "signature": signature, "model": model_name, "input_size": input_size}


def export_zoo_model(model_name: str, *, num_classes: int, input_size: int, folder: Path) -> tuple[Path, str]:
    """A freshly built zoo model (a classifier or a detector) as ONNX in folder; returns its path and architecture
    signature (a detector's is of the model as exported; its costs are profiled from its layers on meta)."""
    import torch

    from training.engine.yolo.zoo import build_detection_model, detection_model_names

    from .profiling import architecture_signature

    torch.manual_seed(0)
    path = Path(folder) / f"{model_name}-{input_size}.onnx"
    if model_name in detection_model_names():
        from deployment.engine.detect_onnx import export_detector_onnx

        model = build_detection_model(model_name, nc=num_classes).eval()
        return export_detector_onnx(model, input_size=input_size, path=path), architecture_signature(model, input_size)

    from deployment.engine.onnx_export import export_onnx
    from training.engine.zoo import build_model

    model = build_model(model_name, num_classes=num_classes, input_size=input_size).eval()
    return export_onnx(model, input_size=input_size, path=path), architecture_signature(model, input_size)


def time_onnx(path: Path, *, input_size: int, timeout_s: float = 600.0,
              reference: tuple[Path, int] | None = None) -> dict:
    """Time one exported model in a fresh process. reference (path, input size): a fixed network timed right after
    each run of the model, in the same process, so a figure can be read relative to the machine's speed at that
    moment (reference_ms, relative_to_reference); the bench uses it on a server whose speed drifts."""
    args = [str(path), input_size]
    if reference:
        args += [str(reference[0]), reference[1]]
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, check=False, env=one_thread_child_env())
    if done.returncode != 0:
        raise RuntimeError(f"ONNX Runtime could not run {path.name}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])

