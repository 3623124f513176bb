"""Latency and accuracy of one artifact, measured by running it. Django-free."""

import time
from pathlib import Path

import numpy as np

from tango_common.images import preprocess_image

WARMUP_RUNS = 5
MAX_TIMED_RUNS = 100
MAX_TIMED_SECONDS = 10.0


def onnx_runner(path: Path):
    """A function batch (N,3,S,S float32) -> logits, running the ONNX file on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def torch_runner(model):
    """The same for a PyTorch module in eval mode (the caller builds and loads it: this core knows no zoo)."""
    import torch

    def run(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run


def measure_artifact(*, run, input_size: int, samples: list[tuple[Path, int]], report=None,
                     batch_size: int = 32) -> dict:
    """Latency at batch 1 and top-1 of `run` (batch -> logits) on the samples, (image, class index) pairs."""
    if not samples:
        raise ValueError("No images to measure on.")
    inputs = np.stack([preprocess_image(p, input_size) for p, _ in samples])
    labels = np.array([label for _, label in samples])

    one = inputs[:1]
    for _ in range(WARMUP_RUNS):
        run(one)
    timings = []
    started = time.perf_counter()
    while len(timings) < MAX_TIMED_RUNS and time.perf_counter() - started < MAX_TIMED_SECONDS:
        t0 = time.perf_counter()
        run(one)
        timings.append((time.perf_counter() - t0) * 1000)
        if report is not None and len(timings) % 20 == 0:
            report(None)  # lets a cancelled job stop between runs

    correct = 0
    for start in range(0, len(inputs), batch_size):
        logits = run(inputs[start:start + batch_size])
        correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    return {
        "latency_p50_ms": float(np.percentile(timings, 50)),
        "latency_p95_ms": float(np.percentile(timings, 95)),
        "latency_mean_ms": float(np.mean(timings)),
        "runs": len(timings),
        "top1": correct / len(inputs),
        "n_images": len(inputs),
    }
