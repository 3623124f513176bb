"""How the portal times one model at batch 1: the benchmark stage (deployment.engine.benchmark), `tango calibrate`
and bench/latency_prediction.py (both through recommender.ort_timing) all time with `time_runs`. Django-free, stdlib
only, so a fresh timing process can import it beside the runtime and nothing else.

How, and why:
- The caller fixes the thread count (one intra-op and one inter-op thread, sequential execution, OMP/MKL pinned to
  one): a figure must not depend on how many cores happen to be free.
- Warm-up until stable: at least WARMUP_RUNS runs and WARMUP_SECONDS, then on until the median of the last
  STABLE_WINDOW runs is within STABLE_TOLERANCE of the window before it (at most WARMUP_MAX_SECONDS), so first
  runs' allocations, page faults, cold caches and a CPU still ramping its clock are not timed.
- Each run is timed by the process's CPU time (OpenVINO and TorchScript run inference on a worker thread of their
  own; with one ONNX Runtime thread it is the calling thread's): on a shared server wall time swings with others'
  load, the CPU time a run needs far less.
- The timed runs come in BLOCKS blocks (each at least MIN_BLOCK_RUNS runs and MIN_BLOCK_SECONDS); the latency is
  the median over the blocks of each block's BLOCK_PERCENTILE-th percentile. A low percentile inside a block drops
  the runs a neighbour slowed down (what is left is the model's own cost); the median across blocks drops a block
  that a burst of others' work (a cache-hungry neighbour on the other core) slowed throughout. Measured here: the
  single 10th percentile of ≥ 10 runs that the benchmark records used before moved more between repeats.
- A reference (another runner) may be timed right after each run of the model: `relative` is then the median over
  blocks of each block's median ratio, which reads the model against the machine's speed at that moment.
  `alternate="block"` times the reference in a block of its own after each of the model's blocks instead (the ratio
  is then each pair of blocks' figures): both keep their caches warm within a block, as they would when run alone,
  and a drift of the machine's speed over seconds (measured here: the same int8 artifact at 2.6 ms and 4.1 ms a
  minute apart, fresh process or not) slows both sides of a pair alike.

Peak memory (`PeakMemory`), the same for every row, the benchmark stage's and `tango calibrate`'s: in a fresh process
of its own that has already imported the runtime's libraries, the peak of the resident set (VmHWM, reset through
/proc/self/clear_refs) from just before the model is loaded until its first run has returned, above the resident set
just before the load. It counts the model's weights, the runtime's state for the model and one batch-1 run's
working memory; not the runtime's libraries, not the reference network timed beside it (loaded after the reading),
and not the warm-up (a warm run reuses the first run's pages). Only a fresh process gives it: in a process that
ran models before, freed pages stay resident and are reused (ResNet-18 at 224 px, PyTorch eager, read 37.8 MB the
first time in one process and 0.0 MB the second; the benchmark stage showed 1.1 MB and 33.7 MB for one model), so a
model timed in such a process has no peak memory (None) rather than a wrong one. PyTorch eager's weights are loaded
after the baseline like an artifact's file (benchmark.EagerLoader; they used to arrive with the loader, before it:
that ResNet-18 read 55.6 MB in a fresh process, now 98.8 MB with its 44.7 MB of weights). Not
tracemalloc (it sees Python's allocations only; tensors and runtimes allocate in C) nor ru_maxrss (it cannot be reset,
so it keeps the imports' and the interpreter's start-up peak).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

WARMUP_RUNS = 3
WARMUP_SECONDS = 0.3
WARMUP_MAX_SECONDS = 3.0
STABLE_WINDOW = 2
STABLE_TOLERANCE = 0.03
BLOCKS = 5
MIN_BLOCK_RUNS = 2
MIN_BLOCK_SECONDS = 0.25
MAX_RUNS = 300
BLOCK_PERCENTILE = 25
METHOD = (f"process CPU time, one thread; warm-up until stable; median over {BLOCKS} blocks of each block's "
          f"{BLOCK_PERCENTILE}th percentile")


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except (OSError, StopIteration, ValueError):
        return None


class PeakMemory:
    """The peak resident memory of this process above its resident memory at `start()`, in MB (see the module's
    doc): start() right before the model is loaded, mb() once it has run once. None where Linux's /proc cannot reset
    the peak (then no figure is better than one that carries an earlier peak)."""

    def __init__(self):
        self.baseline = None

    def start(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
        except OSError:
            return self
        self.baseline = _status_kib("VmRSS")
        return self

    def mb(self) -> float | None:
        peak = _status_kib("VmHWM")
        if self.baseline is None or peak is None:
            return None
        return round(max(0, peak - self.baseline) / 1024, 1)


def session_options(ort, threads: int | None):
    """ONNX Runtime session options for a timed session (`ort`: the onnxruntime module, imported by the caller):
    `threads` intra-op threads, one inter-op thread, sequential execution. None: ONNX Runtime's defaults."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def percentile(values, q: float) -> float:
    """The q-th percentile, linearly interpolated (numpy's default), without numpy."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed_ms(run: Callable[[], object], clock: Callable[[], float] = time.process_time) -> tuple[float, float]:
    """(CPU ms, wall ms) of one run."""
    c0, w0 = clock(), time.perf_counter()
    run()
    return (clock() - c0) * 1000, (time.perf_counter() - w0) * 1000


def warm_up(run: Callable[[], object], *, clock=time.process_time, min_runs: int = WARMUP_RUNS,
            min_seconds: float = WARMUP_SECONDS, max_seconds: float = WARMUP_MAX_SECONDS,
            window: int = STABLE_WINDOW, tolerance: float = STABLE_TOLERANCE, also=None) -> int:
    """Run until the latency is stable (see the module's doc); returns the number of warm-up runs. `also`: a second
    runner (the reference) warmed beside it."""
    times: list[float] = []
    started = time.perf_counter()
    while True:
        times.append(timed_ms(run, clock)[0])
        if also is not None:
            also()
        elapsed = time.perf_counter() - started
        if len(times) < max(min_runs, 2 * window) or elapsed < min_seconds:
            continue
        last, before = statistics.median(times[-window:]), statistics.median(times[-2 * window:-window])
        if abs(last / before - 1) <= tolerance or elapsed >= max_seconds:
            return len(times)


def time_runs(run: Callable[[], object], *, clock=time.process_time, reference: Callable[[], object] | None = None,
              blocks: int = BLOCKS, min_block_runs: int = MIN_BLOCK_RUNS,
              min_block_seconds: float = MIN_BLOCK_SECONDS, max_runs: int = MAX_RUNS,
              warmup_runs: int = WARMUP_RUNS, warmup_seconds: float = WARMUP_SECONDS,
              between: Callable[[int], None] | None = None, alternate: str = "run") -> dict:
    """Warm up, then time `run` in blocks. Returns latency_ms (the robust figure, see the module's doc), the
    per-run CPU and wall times (cpu_ms, wall_ms, in order), the blocks' figures and, with a reference, its own
    robust figure and the model's relative to it. `alternate`: the reference runs after each run of the model
    ("run") or in a block of its own after each of its blocks ("block"). `between(runs so far)` is called after every
    run (a job's cancellation check); `warmup_runs`, `warmup_seconds`: the least warm-up."""
    if alternate not in ("run", "block"):
        raise ValueError(f"alternate must be 'run' or 'block', not {alternate!r}")
    if reference is not None and alternate == "block":
        warm_up(reference, clock=clock, min_runs=warmup_runs, min_seconds=warmup_seconds)
        return _time_block_pairs(run, reference, clock=clock, blocks=blocks, min_block_runs=min_block_runs,
                                 min_block_seconds=min_block_seconds, max_runs=max_runs, warmup_runs=warmup_runs,
                                 warmup_seconds=warmup_seconds, between=between)
    warmup_runs = warm_up(run, clock=clock, min_runs=warmup_runs, min_seconds=warmup_seconds,
                          also=reference)
    per_block = max(1, max_runs // blocks)
    cpu: list[float] = []
    wall: list[float] = []
    ref_cpu: list[float] = []
    block_figures, block_ref, block_ratio = [], [], []
    for _ in range(blocks):
        b_cpu, b_ref = [], []
        started = time.perf_counter()
        while len(b_cpu) < per_block and (len(b_cpu) < min_block_runs
                                          or time.perf_counter() - started < min_block_seconds):
            c, w = timed_ms(run, clock)
            b_cpu.append(c)
            wall.append(w)
            if reference is not None:
                b_ref.append(timed_ms(reference, clock)[0])
            if between is not None:
                between(len(cpu) + len(b_cpu))
        cpu.extend(b_cpu)
        ref_cpu.extend(b_ref)
        block_figures.append(percentile(b_cpu, BLOCK_PERCENTILE))
        if b_ref:
            block_ref.append(percentile(b_ref, BLOCK_PERCENTILE))
            block_ratio.append(statistics.median(c / max(r, 1e-9) for c, r in zip(b_cpu, b_ref, strict=True)))
    out = {"latency_ms": statistics.median(block_figures), "block_ms": block_figures, "cpu_ms": cpu, "wall_ms": wall,
           "runs": len(cpu), "warmup_runs": warmup_runs, "method": METHOD}
    if reference is not None:
        out.update(reference_ms=statistics.median(block_ref), relative_to_reference=statistics.median(block_ratio))
    return out


def _time_block(run, clock, *, limit: int, min_runs: int, min_seconds: float, between=None, done: int = 0):
    """One block: (CPU ms, wall ms) per run, at least min_runs runs and min_seconds, at most limit runs."""
    cpu: list[float] = []
    wall: list[float] = []
    started = time.perf_counter()
    while len(cpu) < limit and (len(cpu) < min_runs or time.perf_counter() - started < min_seconds):
        c, w = timed_ms(run, clock)
        cpu.append(c)
        wall.append(w)
        if between is not None:
            between(done + len(cpu))
    return cpu, wall


def _time_block_pairs(run, reference, *, clock, blocks, min_block_runs, min_block_seconds, max_runs, warmup_runs,
                      warmup_seconds, between) -> dict:
    """time_runs with alternate="block": a block of the model, then a block of the reference, `blocks` times."""
    warmup_runs = warm_up(run, clock=clock, min_runs=warmup_runs, min_seconds=warmup_seconds)
    per_block = max(1, max_runs // blocks)
    cpu: list[float] = []
    wall: list[float] = []
    figures, ref_figures = [], []
    for _ in range(blocks):
        b_cpu, b_wall = _time_block(run, clock, limit=per_block, min_runs=min_block_runs,
                                    min_seconds=min_block_seconds, between=between, done=len(cpu))
        cpu.extend(b_cpu)
        wall.extend(b_wall)
        figures.append(percentile(b_cpu, BLOCK_PERCENTILE))
        r_cpu, _ = _time_block(reference, clock, limit=per_block, min_runs=min_block_runs,
                               min_seconds=min_block_seconds)
        ref_figures.append(percentile(r_cpu, BLOCK_PERCENTILE))
    ratios = [f / max(r, 1e-9) for f, r in zip(figures, ref_figures, strict=True)]
    return {"latency_ms": statistics.median(figures), "block_ms": figures, "cpu_ms": cpu, "wall_ms": wall,
            "runs": len(cpu), "warmup_runs": warmup_runs, "method": METHOD,
            "reference_ms": statistics.median(ref_figures), "reference_block_ms": ref_figures,
            "relative_to_reference": statistics.median(ratios), "alternate": "block"}
