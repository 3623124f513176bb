"""Latency and mAP50 of one detection artifact, measured by running it. Django-free.

`run(batch) -> output` is the artifact's own runtime (ONNX Runtime, OpenVINO, PyTorch, …) taking letterboxed
(N, 3, S, S) float32 and returning the raw (N, 4 + classes, anchors) tensor (or a list whose first item is it).
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .detect_infer import decode, letterbox, to_image_pixels
from .detect_onnx import DEFAULT_IOU, MAP_CONF, map50, read_yolo_labels

WARMUP_RUNS = 3
MAX_TIMED_RUNS = 50
MAX_TIMED_SECONDS = 10.0


def _first(output) -> np.ndarray:
    return np.asarray(output[0] if isinstance(output, (list, tuple)) else output)


def measure_detector(*, run: Callable, input_size: int, samples: list[tuple[Path, Path | None]], num_classes: int,
                     report: Callable[..., None] | None = None) -> dict:
    """Batch-1 latency (p50, p95, mean over up to 50 runs or 10 s) and mAP50 over the labelled samples."""
    if not samples:
        raise ValueError("No images to measure on.")
    prepared = [letterbox(image, input_size) for image, _ in samples]
    one = prepared[0][0][None]
    for _ in range(WARMUP_RUNS):
        run(one)
    timings, started = [], time.perf_counter()
    while len(timings) < MAX_TIMED_RUNS and time.perf_counter() - started < MAX_TIMED_SECONDS:
        t0 = time.perf_counter()
        run(one)
        timings.append((time.perf_counter() - t0) * 1000)
        if report is not None and len(timings) % 10 == 0:
            report(None)  # lets a cancelled job stop between runs
    detections, truths = [], []
    for (array, transform), (_, label) in zip(prepared, samples, strict=True):
        raw = _first(run(array[None]))[0]
        detections.append(to_image_pixels(decode(raw, conf=MAP_CONF, iou=DEFAULT_IOU), transform))
        truths.append(read_yolo_labels(label, transform["width"], transform["height"]))
    return {
        "latency_p50_ms": float(np.percentile(timings, 50)), "latency_p95_ms": float(np.percentile(timings, 95)),
        "latency_mean_ms": float(np.mean(timings)), "runs": len(timings),
        "map50": map50(detections, truths, num_classes), "n_images": len(samples),
    }
