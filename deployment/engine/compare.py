"""The paper's Table 2, live: PyTorch eager against every engine × precision that runs here, at two input sizes,
with speed-up and accuracy delta. Django-free; the benchmark stage and bench/engines.py both call `compare`.

Every engine row went through the accuracy guard first (so a row's precision is what the guard let through, with
the fallback it took); TensorRT, which builds on the device, is listed as such.

Every row is timed in a fresh process of its own (benchmark.measure, deployment.engine.isolated), PyTorch eager
included. An engine row's speed-up is read against PyTorch eager timed in that same process, in alternating blocks
(deployment.engine.timing, alternate="block"): the machine's speed drifts by tens of percent over a minute on a
shared host, and a ratio of two figures taken minutes apart carried that drift. The CPU time figures (p10 and the
block median) and the wall p50 are kept beside it; `speedup_wall` is the wall p50 ratio against the eager row.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from . import benchmark
from .converters import registry
from .converters.base import CalibrationSet, Report, Source, say
from .guard import DEFAULT_TOLERANCE, Validation, delta, guarded_convert

EAGER = "PyTorch eager"  # the baseline of a model trained here
FIGURES = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "cpu_p10_ms", "cpu_latency_ms", "throughput_ips",
           "peak_memory_mb", "file_mb", "reference_ms", "relative_to_reference", "isolated")


def combinations(engines: list[str] | None = None) -> list[tuple[str, str]]:
    """(engine, precision) rows: everything that runs here, then what builds on the device."""
    rows = [(e, p) for e, p in registry.matrix() if engines is None or e in engines]
    for engine in registry.engines():
        if engines is not None and engine not in engines:
            continue
        rows += [(engine, p) for p in registry.offered(engine) if p not in registry.precisions_here(engine)]
    return rows


def compare(*, source: Source, validation: Validation, calibration: CalibrationSet | None,
            more_calibration: CalibrationSet | None, out_dir: Path, tolerance: float = DEFAULT_TOLERANCE,
            engines: list[str] | None = None, report: Report | None = None, keep: bool = False,
            measure_kwargs: dict | None = None, progress: Callable[[float], None] | None = None,
            baseline: str = EAGER) -> dict:
    """One input size: eager PyTorch, then every engine × precision through the guard, measured.
    `progress(done)` hears the fraction of rows done after each one: a size takes many minutes. `baseline` names
    what `source.torch_model` really runs, in the first row and the log: an imported model has no PyTorch weights,
    its module runs the model's ONNX form in ONNX Runtime (deployment.optimize.torch_module)."""
    measure_kwargs = measure_kwargs or {}
    progress = progress or (lambda done: None)
    rows_asked = combinations(engines)
    out_dir = Path(out_dir)
    size = source.input_size
    eager = benchmark.measure(benchmark.torch_eager_loader(source.torch_model), input_size=size,
                              validation=validation, report=report, **measure_kwargs)
    reference = eager["accuracy"]
    rows = [{"engine": "pytorch" if baseline == EAGER else "onnxruntime", "runtime": baseline, "baseline": True,
             "precision": "fp32", "asked": "fp32", "fallback": None, **{k: eager.get(k) for k in FIGURES},
             "accuracy": reference, "delta": 0.0}]
    say(report, f"{size} px — {baseline}: p50 {eager['latency_p50_ms']:.2f} ms (CPU p10 {eager['cpu_p10_ms']:.2f} "
                f"ms), {_metrics(reference)}")
    progress(1 / (len(rows_asked) + 1))
    for done, (engine, precision) in enumerate(rows_asked, start=2):
        # A row takes from seconds to minutes (TFLite's converter 100-300 s, TVM's compiler longer): said before it
        # starts, as the console and the bar showed nothing new while it ran.
        say(report, f"{size} px — {engine} {precision}: converting, then the accuracy guard and the timing…")
        started = time.perf_counter()
        outcome = guarded_convert(engine, source, precision=precision, out_dir=out_dir / f"{engine}-{precision}",
                                  validation=validation, reference=reference, calibration=calibration,
                                  more_calibration=more_calibration, tolerance=tolerance, report=None)
        row = {"engine": engine, "runtime": registry.converter_for(engine).label, "asked": precision,
               "fallback": outcome.fallback, "guard": outcome.summary(),
               "precision": outcome.artifact.precision if outcome.artifact else None}
        if not outcome.passed:
            errors = [a.error for a in outcome.attempts if a.error]
            status = ("did not convert: " + errors[-1][:160] if len(errors) == len(outcome.attempts)
                      else "no variant passed the accuracy guard")
            rows.append({**row, "status": status})
        elif not outcome.artifact.runs_here:
            rows.append({**row, "status": outcome.artifact.status,
                         "file_mb": round(outcome.artifact.size_bytes / 1e6, 2)})
        else:
            artifact = outcome.artifact
            # the guard has just scored this very artifact on this validation split: its metrics are the row's
            figures = benchmark.measure(benchmark.ArtifactLoader(artifact), input_size=size, validation=validation,
                                        file_bytes=artifact.size_bytes, report=report,
                                        accuracy=outcome.attempts[-1].metrics,
                                        reference=benchmark.torch_eager_loader(source.torch_model),
                                        **measure_kwargs)
            rows.append({**row, **{k: figures.get(k) for k in FIGURES}, "accuracy": figures["accuracy"],
                         "delta": delta(reference, figures["accuracy"], validation.metric_names),
                         "converter_versions": artifact.converter_versions,
                         "calibration": artifact.calibration,
                         # what an int8 model's float layers compute in (OpenVINO: bf16 where the CPU has it)
                         "float_precision": artifact.options.get("float_precision")})
            say(report, f"{size} px — {engine} {precision}"
                        + (f" -> {artifact.precision} ({outcome.fallback})" if outcome.fallback else "")
                        + f": p50 {figures['latency_p50_ms']:.2f} ms (CPU p10 {figures['cpu_p10_ms']:.2f} ms"
                        + (f", {1 / figures['relative_to_reference']:.2f}x {baseline} timed beside it"
                           if figures.get("relative_to_reference") else "") + "), "
                          f"{_metrics(figures['accuracy'])} "
                          f"({time.perf_counter() - started:.0f} s)")
        if not keep:
            shutil.rmtree(out_dir / f"{engine}-{precision}", ignore_errors=True)
        progress(done / (len(rows_asked) + 1))
    return summarise(size, rows, metric=validation.primary, tolerance=tolerance)


def summarise(size: int, rows: list[dict], *, metric: str, tolerance: float) -> dict:
    """Speed-ups over PyTorch eager, the pick (the fastest within tolerance) and the fastest overall. A row timed
    beside eager (relative_to_reference) takes that paired ratio; one without it the ratio of CPU p10s."""
    base = rows[0]
    for row in rows:
        if row.get("cpu_p10_ms"):
            relative = row.get("relative_to_reference")
            row["speedup_cpu"] = round(1 / relative if relative else base["cpu_p10_ms"] / row["cpu_p10_ms"], 2)
            row["speedup_wall"] = round(base["latency_p50_ms"] / row["latency_p50_ms"], 2)
            row["metric"] = row["accuracy"][metric]
    measured = [r for r in rows[1:] if r.get("cpu_p10_ms")]
    fastest = max(measured, key=lambda r: r["speedup_cpu"], default=None)
    pick = max((r for r in measured if r["delta"] >= -tolerance), key=lambda r: r["speedup_cpu"], default=None)
    return {"input_size": size, "metric": metric, "rows": rows,
            "pick": pick and {"engine": pick["engine"], "precision": pick["precision"],
                              "speedup_cpu": pick["speedup_cpu"], "speedup_wall": pick["speedup_wall"],
                              "delta": pick["delta"]},
            "fastest": fastest and {"engine": fastest["engine"], "precision": fastest["precision"],
                                    "speedup_cpu": fastest["speedup_cpu"]}}


def chart(tables: list[dict]) -> list[dict]:
    """Bars for the page: speed-up over PyTorch eager per engine × precision, one group per input size; widths in
    percent of the largest speed-up."""
    bars = [(t["input_size"], r) for t in tables for r in t["rows"] if r.get("speedup_cpu")]
    top = max((r["speedup_cpu"] for _, r in bars), default=1.0) or 1.0
    return [{"input_size": size, "label": f"{r['runtime']} {r['precision']}", "speedup": r["speedup_cpu"],
             "width": round(100 * r["speedup_cpu"] / top, 1), "px": round(260 * r["speedup_cpu"] / top),
             "text_x": 205 + round(260 * r["speedup_cpu"] / top), "delta": r["delta"],
             "fallback": r.get("fallback")} for size, r in bars]


def _metrics(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.2f}%" for k, v in metrics.items() if k != "n_images")


def second_size(task: str, input_size: int) -> list[int]:
    """The two input sizes of the table: 320 and 640 for detection (the paper's), S and 2S for classification."""
    if task == "detection":
        return [320, 640]
    return [input_size, 2 * input_size]


ExportFn = Callable[[int, Path], Path]
