"""Benchmark one runnable model: latency p50/p90/p99 at batch 1 after warm-up, throughput, peak memory, file size
and accuracy on the validation split. Django-free; the benchmark stage stores the figures as the recommender's
BenchmarkRecord rows.

Peak memory: deployment.engine.timing.PeakMemory (the model's load and first run, in the timing process, above its
resident memory before the load; the runtime's libraries are imported first, as `runtime_modules` of the loader
names them). A model timed in the caller's process (a loader that cannot be sent to a timing process of its own)
gets None: that process's allocator keeps what earlier models freed, and the figure read anything from 0 up.

Timing convention, shared with `tango calibrate` and bench/latency_prediction.py (recommender/ort_timing.py), which
the recommender's latency model is fitted on: deployment.engine.timing.time_runs, one inference thread, warm-up
until stable, the process's CPU time per run (OpenVINO and TorchScript run on their own worker thread), and the
record's latency is the median over five blocks of each block's 25th percentile (on a shared server wall time swings
by 2x under others' load, the CPU time a run needs much less; the blocks' median drops a block a neighbour's burst
slowed throughout). The wall-clock percentiles a user sees are kept beside it and shown on the page.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import timing
from .converters.base import Artifact, Runner
from .timing import percentile

WARMUP_RUNS = 5  # at least; then on until stable (deployment.engine.timing.warm_up)
MIN_RUNS = 10
MAX_RUNS = 100
MAX_SECONDS = 8.0
RECORD_THREADS = 1


def measure(load: Callable[[], Runner], *, input_size: int, validation=None, file_bytes: int | None = None,
            report: Callable[..., None] | None = None, warmup: int = WARMUP_RUNS, min_runs: int = MIN_RUNS,
            max_runs: int = MAX_RUNS, max_seconds: float = MAX_SECONDS, threads: int = RECORD_THREADS,
            accuracy: dict | None = None, isolate: bool = True, reference: Callable[[], Runner] | None = None) -> dict:
    """Load (timed as part of the peak memory), warm up, time batch-1 runs, then evaluate on `validation`.

    `load()` returns the runner; it should use `threads` inference threads (the callers pass it on). `isolate`: time
    it in a fresh process of its own (deployment.engine.isolated), so no runtime an earlier measurement loaded in
    this process (its thread pools, its allocator's state) can touch the figure; a loader that cannot be sent there
    (a module defined inside a function) is timed here, and the figures say so. `reference` (PyTorch eager, for a
    speed-up): loaded beside it and timed in alternating blocks (deployment.engine.timing, alternate="block"), so the
    ratio is read against the machine's speed at that moment. `accuracy`: the metrics this very artifact already
    scored on `validation` (the accuracy guard's), taken instead of evaluating it again."""
    batch = _first_batch(validation, input_size)
    settings = {"warmup": warmup, "min_runs": min_runs, "max_runs": max_runs, "max_seconds": max_seconds,
                "threads": threads}
    figures, here, run = None, {"isolated": False}, None
    if isolate:
        from . import isolated

        try:
            figures = isolated.measure_in_child(load, batch=batch, reference=reference, settings=settings,
                                                report=report)
        except isolated.NotSendable as why:
            here["isolation_note"] = f"timed in the worker's process: {why}"
    if figures is None:  # the runner timed here is the one scored below: loaded once
        figures, run = time_here(load, batch=batch, reference=reference, report=report, **settings)
        figures.update(here)
    figures["file_mb"] = round(file_bytes / 1e6, 3) if file_bytes else None
    if accuracy is not None:
        figures["accuracy"] = dict(accuracy)
    elif validation is not None and validation.samples:
        figures["accuracy"] = validation.evaluate(run if run is not None else load())
    return figures


def time_here(load, *, batch: np.ndarray, reference=None, report=None, memory: bool = False,
              **settings) -> tuple[dict, Runner]:
    """measure()'s timing in this process: (figures, the runner it loaded and timed). `memory`: this is a fresh
    process of its own (deployment.engine.isolated), so its peak memory means something (timing.PeakMemory); else
    peak_memory_mb is None. PyTorch's thread count, which a runner may set for the process, is put back
    afterwards."""
    import sys

    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        return _time(load, batch=batch, reference=reference, report=report, memory=memory, **settings)
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)


def _import_runtime(load) -> None:
    """Import the loader's runtime before the memory baseline: its libraries are not the model's memory."""
    import gc
    import importlib

    for name in getattr(load, "runtime_modules", ()):
        importlib.import_module(name)
    gc.collect()


def _first_batch(validation, input_size: int) -> np.ndarray:
    """The (1, 3, S, S) input every run is timed on: the first validation image, random pixels without one."""
    if validation is not None and validation.samples:
        from .converters.base import DETECTION

        first = validation.prepared()[0]
        return np.ascontiguousarray((first[0] if validation.task == DETECTION else first)[None], dtype=np.float32)
    return np.random.default_rng(0).random((1, 3, input_size, input_size), dtype=np.float32)


def _time(load, *, batch, reference, report, memory, warmup, min_runs, max_runs, max_seconds, threads
          ) -> tuple[dict, Runner]:
    if memory:
        _import_runtime(load)
    peak = timing.PeakMemory().start() if memory else None
    started = time.perf_counter()
    run = load()
    load_s = time.perf_counter() - started
    run(batch)  # the first run: where the peak memory's reading ends (and the warm-up's first run)
    # A runtime in a process of its own (TFLite's interpreter in its side environment) reports that process's CPU
    # time; it is added to ours, so the CPU figure is the inference's work, not the time spent waiting for it. Its
    # memory is that process's too, which this one cannot read: no figure.
    separate = hasattr(run, "child_cpu_seconds")
    child = getattr(run, "child_cpu_seconds", lambda: 0.0)
    peak_mb = peak.mb() if peak is not None and not separate else None
    ref_run = None
    if reference is not None:  # loaded after the reading: its memory is not the model's
        ref_model = reference()
        ref_run = lambda: ref_model(batch)  # noqa: E731

    def between(runs: int) -> None:
        if report is not None and runs % 20 == 0:
            report(None)  # lets a cancelled job stop between runs

    blocks = timing.BLOCKS
    timed = timing.time_runs(lambda: run(batch), clock=lambda: time.process_time() + child(), blocks=blocks,
                             min_block_runs=-(-min_runs // blocks), min_block_seconds=max_seconds / blocks,
                             max_runs=max_runs, warmup_runs=warmup, between=between, reference=ref_run,
                             alternate="block")
    wall, cpu = timed["wall_ms"], timed["cpu_ms"]
    figures = {
        "latency_p50_ms": percentile(wall, 50), "latency_p90_ms": percentile(wall, 90),
        "latency_p95_ms": percentile(wall, 95), "latency_p99_ms": percentile(wall, 99),
        "latency_mean_ms": statistics.fmean(wall), "cpu_latency_ms": timed["latency_ms"],
        "cpu_p10_ms": percentile(cpu, 10), "cpu_median_ms": percentile(cpu, 50),
        "throughput_ips": 1000 * len(wall) / sum(wall), "runs": len(wall), "warmup_runs": timed["warmup_runs"],
        "threads": threads, "load_s": round(load_s, 3),
        "peak_memory_mb": peak_mb,
    }
    if ref_run is not None:
        figures["reference_ms"] = timed["reference_ms"]
        figures["relative_to_reference"] = timed["relative_to_reference"]
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}, run


def record_latency_ms(figures: dict) -> float:
    """The latency a BenchmarkRecord stores (the calibrate convention, deployment.engine.timing; figures measured
    before it carry only the CPU-time p10)."""
    return max(figures.get("cpu_latency_ms", figures["cpu_p10_ms"]), 1e-3)


def record_details(figures: dict, **extra) -> dict:
    keep = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "cpu_p10_ms", "cpu_median_ms", "throughput_ips",
            "runs", "threads", "file_mb")
    return {"timing": f"{timing.METHOD} (as tango calibrate)",
            **{k: figures[k] for k in keep if k in figures}, **extra}


def torch_eager_loader(model, threads: int = RECORD_THREADS) -> Callable[[], Runner]:
    """PyTorch eager, the baseline every engine is compared with (picklable, so a timing process can load it)."""
    return EagerLoader(model, threads)


@dataclass(frozen=True)
class EagerLoader:
    """`model`: the module, or (in a timing process) the module saved by torch.save, loaded by the call: its
    weights are then part of what loading it costs there, as an artifact's file read is, where unpickled with the
    loader they were resident before the memory baseline. `modules`: the modules its classes come from, imported
    before that baseline with torch (their code is not the model's memory either)."""

    model: Any
    threads: int = RECORD_THREADS
    modules: tuple[str, ...] = ()

    @property
    def runtime_modules(self) -> tuple[str, ...]:
        return ("torch", *self.modules)

    def __reduce__(self):
        if isinstance(self.model, bytes):
            return EagerLoader, (self.model, self.threads, self.modules)
        import io

        import torch

        saved = io.BytesIO()
        torch.save(self.model, saved)  # as a model file is read: each tensor's bytes straight into its storage
        modules = tuple(sorted({type(m).__module__ for m in self.model.modules()}))
        return EagerLoader, (saved.getvalue(), self.threads, modules)

    def __call__(self) -> Runner:
        import io

        import torch

        torch.set_num_threads(self.threads)
        model = self.model
        if isinstance(model, bytes):  # the parent's own module, saved by __reduce__ above: trusted
            model = torch.load(io.BytesIO(model), weights_only=False)

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            return (out[0] if isinstance(out, (list, tuple)) else out).numpy()

        return run


@dataclass(frozen=True)
class ArtifactLoader:
    """A converted artifact opened by its own runtime (picklable, as EagerLoader)."""

    artifact: Artifact
    threads: int = RECORD_THREADS

    @property
    def runtime_modules(self) -> tuple[str, ...]:
        from .converters import registry

        names = getattr(registry.converter_for(self.artifact.engine), "runtime_modules", ())
        return ("deployment.engine.converters.registry", *names)

    def __call__(self) -> Runner:
        from .converters import registry

        return registry.load(self.artifact, threads=self.threads)


def file_bytes(paths: list[Path]) -> int:
    return sum(Path(p).stat().st_size for p in paths)
