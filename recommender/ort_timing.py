"""Time a zoo model with ONNX Runtime on this server (batch 1): the calibrate command's and the bench's probe.

A small local helper until deployment's measure API times untrained candidates: the weights of a freshly built
model do not change its latency. Export goes through deployment's exporters (classification and detection), so the
graph is the one a deployment runs. The timing itself runs in a fresh Python process that imports only ONNX
Runtime: its peak resident memory above its own baseline is the model's memory, not whatever an earlier candidate
left in the allocator.

How a latency is measured, and why:
- One intra-op and one inter-op thread (and OMP/MKL pinned to one): a fixed thread count, so a figure does not
  depend on how many cores happen to be free, and the run executes on the calling thread.
- Warm-up: at least WARMUP_RUNS runs and WARMUP_SECONDS, so the first runs' allocations, page faults and cold
  caches are not timed.
- Repeats: at least MIN_RUNS runs and MIN_SECONDS, at most MAX_RUNS (a large network still gets MIN_RUNS).
- Each run is timed by the CPU time of the calling thread (time.thread_time): on a shared server, wall time swings
  with others' load while the CPU time a run needs swings far less. The latency is the 10th percentile of the
  runs (the runs least slowed by a busy neighbour; the convention every benchmark record follows, deployment's
  benchmark stage included, so the records one model is fitted to are alike). The median and the wall-clock
  median are kept beside it; on a quiet machine the median is within a few percent of it.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP_RUNS = 3
WARMUP_SECONDS = 0.3
MIN_RUNS = 10
MIN_SECONDS = 1.0
MAX_RUNS = 60
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

# Runs in the child process: stdlib, numpy, onnxruntime only.
_CHILD = r"""
import json, statistics, sys, time
import numpy as np
import onnxruntime as ort

def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

path, size, warmup, warmup_s, min_runs, min_s, max_runs = sys.argv[1], *map(float, sys.argv[2:8])
reference, ref_size = (sys.argv[8], int(sys.argv[9])) if len(sys.argv) > 9 else (None, 0)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

def load(model_path, side):
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)}
    return lambda: session.run(None, feed)

def warm(run):
    started, runs = time.perf_counter(), 0
    while runs < warmup or time.perf_counter() - started < warmup_s:
        run()
        runs += 1
    return runs

def timed(run):
    c0 = time.thread_time()
    run()
    return (time.thread_time() - c0) * 1000

baseline = peak_kib()
model = load(path, int(size))
runs = warm(model)
peak = peak_kib()  # the model's memory, before a reference network is loaded beside it
ref = load(reference, ref_size) if reference else None
if ref:
    warm(ref)
cpu, wall, ref_cpu = [], [], []
started = time.perf_counter()
while len(cpu) < max_runs and (len(cpu) < min_runs or time.perf_counter() - started < min_s):
    w0 = time.perf_counter()
    cpu.append(timed(model))
    wall.append((time.perf_counter() - w0) * 1000)
    if ref:  # interleaved: both feel the same moment of the machine
        ref_cpu.append(timed(ref))
out = {"latency_ms": sorted(cpu)[len(cpu) // 10], "latency_median_ms": statistics.median(cpu),
       "latency_wall_ms": statistics.median(wall), "runs": len(cpu), "warmup_runs": runs, "threads": 1,
       "timing": "thread CPU time, 10th percentile, one thread", "memory_mb": max(0, peak - baseline) / 1024}
if ref:
    out["reference_ms"] = sorted(ref_cpu)[len(ref_cpu) // 10]
    out["relative_to_reference"] = statistics.median(c / r for c, r in zip(cpu, ref_cpu))
print(json.dumps(out))
"""


def time_zoo_model(model_name: str, *, num_classes: int, input_size: int, folder: Path | None = None) -> dict:
    """Build, export to ONNX and time one model. Returns latency (ms: the 10th percentile of the runs' CPU time),
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
    args = [str(path), input_size, WARMUP_RUNS, WARMUP_SECONDS, MIN_RUNS, MIN_SECONDS, MAX_RUNS]
    if reference:
        args += [str(reference[0]), reference[1]]
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, check=False, env={**os.environ, **ONE_THREAD})
    if done.returncode != 0:
        raise RuntimeError(f"ONNX Runtime could not run {path.name}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
