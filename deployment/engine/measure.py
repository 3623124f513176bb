"""Latency and accuracy of one artifact, measured by running it. Django-free."""

import time
from pathlib import Path

import numpy as np

from .bundle_infer import preprocess_image

WARMUP_RUNS = 5
MAX_TIMED_RUNS = 100
MAX_TIMED_SECONDS = 10.0


def _runner(kind: str, path: Path, *, model_name: str, num_classes: int, input_size: int):
    """A function batch (N,3,S,S float32) -> logits, for the artifact's own runtime."""
    if kind == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    if kind == "pytorch":
        import torch

        from training.engine.zoo import load_trained_model

        model = load_trained_model(model_name, num_classes=num_classes, input_size=input_size, weights_path=path)

        def run(batch):
            with torch.inference_mode():
                return model(torch.from_numpy(batch)).numpy()

        return run
    raise ValueError(f"Cannot run a {kind!r} artifact here.")


def measure_artifact(*, kind: str, path: Path, model_name: str, num_classes: int, input_size: int,
                     samples: list[tuple[Path, int]], report=None, batch_size: int = 32) -> dict:
    run = _runner(kind, path, model_name=model_name, num_classes=num_classes, input_size=input_size)
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
