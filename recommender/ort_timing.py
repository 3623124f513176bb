"""Time a zoo model with ONNX Runtime on this server (batch 1): the calibrate command's and the bench's probe.

A small local helper until deployment's measure API times untrained candidates: the weights of a freshly built
model do not change its latency. Export goes through deployment's exporter, so the graph is the one a deployment
runs. The timing itself runs in a fresh Python process that imports only ONNX Runtime: its peak resident memory
above its own baseline is the model's memory, not whatever an earlier candidate left in the allocator.

One intra-op thread, timed by the CPU time of the calling thread (ORT runs a one-thread session on the caller):
this server is shared, and under others' load wall time swings by 2x or more while the CPU time a run needs
swings far less. The latency is the 10th percentile of the runs' CPU times (the runs least slowed by a busy
sibling hyperthread); the median and the wall-clock median are kept beside it.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

WARMUP_RUNS = 3
MIN_RUNS = 5
MAX_RUNS = 40
MAX_SECONDS = 5.0

# Runs in the child process: stdlib, numpy, onnxruntime only.
_CHILD = r"""
import json, statistics, sys, time
import numpy as np
import onnxruntime as ort

def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

path, size, warmup, min_runs, max_runs, max_seconds = sys.argv[1], *map(float, sys.argv[2:])
feed = np.random.default_rng(0).random((1, 3, int(size), int(size)), dtype=np.float32)
baseline = peak_kib()
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
for _ in range(int(warmup)):
    session.run(None, {name: feed})
cpu, wall = [], []
started = time.perf_counter()
while len(cpu) < max_runs and (len(cpu) < min_runs or time.perf_counter() - started < max_seconds):
    c0, w0 = time.thread_time(), time.perf_counter()
    session.run(None, {name: feed})
    cpu.append((time.thread_time() - c0) * 1000)
    wall.append((time.perf_counter() - w0) * 1000)
peak = peak_kib()
cpu.sort()
print(json.dumps({"latency_ms": cpu[len(cpu) // 10], "latency_median_ms": statistics.median(cpu),
                  "latency_wall_ms": statistics.median(wall),
                  "runs": len(cpu), "threads": 1, "memory_mb": max(0, peak - baseline) / 1024}))
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
    """A freshly built zoo model as ONNX in folder; returns its path and architecture signature."""
    import torch

    from deployment.engine.onnx_export import export_onnx
    from training.engine.zoo import build_model

    from .profiling import architecture_signature

    torch.manual_seed(0)
    model = build_model(model_name, num_classes=num_classes, input_size=input_size).eval()
    path = export_onnx(model, input_size=input_size, path=Path(folder) / f"{model_name}-{input_size}.onnx")
    return path, architecture_signature(model, input_size)


def time_onnx(path: Path, *, input_size: int, timeout_s: float = 600.0) -> dict:
    args = [str(path), input_size, WARMUP_RUNS, MIN_RUNS, MAX_RUNS, MAX_SECONDS]
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ONNX Runtime could not run {path.name}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
