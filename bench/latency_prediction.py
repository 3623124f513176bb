"""How well the recommender predicts latency on this host: measure candidates with ONNX Runtime, then leave one out.

Each candidate (task × family × complexity × input size) is profiled from the model itself (recommender.profiling,
meta device) and timed with ONNX Runtime, fp32, batch 1, in a fresh process, by the benchmark stage's own routine
(deployment.engine.timing through recommender.ort_timing: one intra-op and one inter-op thread, sequential; warm-up
until stable; process CPU time; the median over five blocks of each block's 25th percentile — what every benchmark
record stores), in five interleaved rounds (shuffled each round); per round, a fixed reference network (ResNet-18 at
64 px) is timed right after each run of the candidate, in the same process.

Two figures per candidate, both the median of its rounds:
- raw: the measured latency, as calibrate and the benchmark stage store it;
- drift-corrected: the candidate's latency relative to the reference at the same moment, times the reference's
  median latency over the whole run. This server is a shared VM whose speed drifts: on a run with the machine to
  itself (coord/quiet), the same candidate's rounds minutes apart still differed by 12.5 % (median; 28 % with the
  single 10th percentile used before the block timing), while latency relative to the interleaved reference moves
  far less (5.6 %). The corrected figure is what the predictor is judged on; the raw table is printed beside it.

Measurement noise is printed under each table: the median spread of a candidate's rounds, the share of candidates
whose every round lies within ±10 % of their figure, and how well the median of the odd rounds agrees with that of
the even ones (two independent half-figures: their gap bounds the noise of the whole figure).

Then, for every record, the latency model is fitted to the others and predicts it: share within ±10 % and ±20 %,
median |error|, Spearman rank correlation, and how the error falls as 0 (datasheet prior only), 3, 6 and all other
records are used (random subsets, averaged over draws).

The same leave-one-out is run on the networks' totals alone (no kernel list): the latency model's totals form, the
model before the per-kernel roofline, printed as one line for comparison.

    python bench/latency_prediction.py [--quick] [--rounds 5] [--reuse MEASUREMENTS.json] [--exports DIR]
    python bench/latency_prediction.py --exports DIR --export-only

--reuse re-analyses earlier measurements instead of measuring again (for working on the model; the headline
numbers come from a run that measures). --exports keeps the ONNX exports in DIR and reuses them, so the exports
(minutes on two cores) can run as a phase of their own before the timing phase, which wants the machine to itself.
Prints the tables, writes bench/results/latency_prediction.json; the last line is the headline against the target.
"""

import argparse
import json
import os
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_WITHIN_10 = 0.90
NUM_CLASSES = 10
# (model, input size): five ResNet depths and the paper's ResNet-203, DenseNet and VGG, small to large inputs.
# Full-size VGG only at 224 px: its 7x7 adaptive pool exports to ONNX only when the map divides evenly.
CLASSIFICATION = [
    ("resnet18", 64), ("resnet18", 128), ("resnet18", 224), ("resnet34", 96), ("resnet34", 160),
    ("resnet50", 96), ("resnet50", 160), ("resnet50", 224), ("resnet101", 128), ("resnet152", 96),
    ("resnet203", 64), ("densenet_tiny", 64), ("densenet_tiny", 224), ("densenet121", 96), ("densenet121", 160),
    ("densenet169", 128), ("densenet201", 96), ("densenet161", 64), ("vgg_tiny", 96), ("vgg_tiny", 224),
    ("vgg11", 224), ("vgg13", 224), ("resnet18", 96), ("densenet121", 224),
]
# Detectors: YOLO11 and the paper's YOLOv7 family, small to medium, at a few input sizes.
DETECTION = [("yolo11n", 160), ("yolo11n", 320), ("yolo11s", 256), ("yolo11m", 160), ("yolov7-tiny", 256),
             ("yolov7-tiny", 416)]
QUICK = [("resnet18", 64), ("resnet34", 96), ("resnet50", 96), ("densenet_tiny", 64), ("densenet121", 96),
         ("vgg_tiny", 96), ("yolo11n", 160)]
REFERENCE = ("resnet18", 64)
STEPS = (0, 3, 6, None)  # None: all other records
DRAWS = 20


def measure(candidates, rounds: int, exports: Path | None = None, export_only: bool = False) -> list[dict]:
    """Export every candidate once, then time them all in `rounds` interleaved rounds (shuffled each round, so a
    burst of others' load hits different candidates). exports: a folder that keeps the ONNX files (and reuses
    those already there), so exporting and timing can run as separate phases."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tango-latency-bench-") as scratch:  # the exports take ~2 GB
        folder = Path(exports or scratch)
        path = _export(REFERENCE[0], REFERENCE[1], folder / "reference")[0]
        exported = _export_all(candidates, folder)
        return [] if export_only else _time_rounds(exported, rounds, (path, REFERENCE[1]))


def _export(name: str, size: int, folder: Path) -> tuple[Path, str | None]:
    from recommender.ort_timing import export_zoo_model

    path = folder / f"{name}-{size}.onnx"
    if path.exists():  # exported by an earlier phase (--exports): the same zoo model, the same seed
        return path, None
    folder.mkdir(parents=True, exist_ok=True)
    return export_zoo_model(name, num_classes=NUM_CLASSES, input_size=size, folder=folder)


def _export_all(candidates, folder: Path) -> list:
    exported = []
    for name, size in candidates:
        task, costs = profile(name, size)
        path, signature = _export(name, size, folder)
        # A classifier is profiled as exported; a detector's layers are profiled on meta (its box decoding, a few
        # element-wise ops, is not in its costs), so only a classifier's signature can be compared.
        assert task == "detection" or signature in (None, costs.signature), "profiled and exported networks differ"
        exported.append((task, name, size, path, costs))
        print(f"exported {name} at {size} px ({task})", flush=True)
    return exported


def profile(name: str, size: int):
    from recommender.profiling import build_detection_on_meta, build_on_meta, profile_model
    from training.engine.yolo.zoo import detection_model_names

    if name in detection_model_names():
        return "detection", profile_model(build_detection_on_meta(name, num_classes=NUM_CLASSES), size)
    return "classification", profile_model(build_on_meta(name, num_classes=NUM_CLASSES, input_size=size), size)


def _time_rounds(exported: list, rounds: int, reference: tuple[Path, int]) -> list[dict]:
    from recommender.ort_timing import time_onnx

    timings: dict[int, list[dict]] = {i: [] for i in range(len(exported))}
    order = list(range(len(exported)))
    for round_ in range(rounds):
        random.Random(round_).shuffle(order)
        for i in order:
            _, name, size, path, _ = exported[i]
            timing = time_onnx(path, input_size=size, reference=reference)
            timings[i].append(timing)
            print(f"round {round_ + 1}/{rounds} {name:14s} {size:4d} px {timing['latency_ms']:8.2f} ms, "
                  f"reference {timing['reference_ms']:6.2f} ms", flush=True)
    nominal = statistics.median(t["reference_ms"] for runs in timings.values() for t in runs)
    rows = []
    for i, (task, name, size, _, costs) in enumerate(exported):
        raw = [t["latency_ms"] for t in timings[i]]
        corrected = [t["relative_to_reference"] * nominal for t in timings[i]]
        rows.append({"task": task, "model": name, "input_size": size, "raw_ms": statistics.median(raw),
                     "corrected_ms": statistics.median(corrected), "round_latencies_ms": raw,
                     "round_corrected_ms": corrected, "raw_spread": max(raw) / min(raw) - 1,
                     "corrected_spread": max(corrected) / min(corrected) - 1, "reference_nominal_ms": nominal,
                     "memory_mb": statistics.median(t["memory_mb"] for t in timings[i]), "rounds": len(raw),
                     "runs": [t["runs"] for t in timings[i]], "block_ms": [t.get("block_ms") for t in timings[i]],
                     "costs": costs.as_dict()})
    return rows


def loo(rows, specs, k: int | None, rng, key: str) -> list[tuple[float, float]]:
    """(predicted, measured) for each record, the model fitted on k other records (all when k is None)."""
    from recommender.engine.costs import Costs
    from recommender.engine.latency import LatencyModel, Record

    records = [Record(Costs.from_dict(r["costs"]), r[key]) for r in rows]
    pairs = []
    for i, held in enumerate(records):
        others = records[:i] + records[i + 1:]
        draws = [others] if k is None else [rng.sample(others, k) for _ in range(DRAWS if k else 1)]
        predictions = [LatencyModel.fit(specs, "fp32", d).predict_ms(held.costs) for d in draws]
        pairs.extend((p, held.latency_ms) for p in predictions)
    return pairs


def summarise(pairs) -> dict:
    from scipy.stats import spearmanr

    errors = [abs(p / m - 1) for p, m in pairs]
    return {"within_10": sum(e <= 0.10 for e in errors) / len(errors),
            "within_20": sum(e <= 0.20 for e in errors) / len(errors),
            "median_error": statistics.median(errors), "p90_error": sorted(errors)[int(0.9 * (len(errors) - 1))],
            "spearman": float(spearmanr([p for p, _ in pairs], [m for _, m in pairs]).statistic), "n": len(pairs)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="six candidates (a smoke run, not the headline)")
    parser.add_argument("--reuse", type=Path, help="analyse these measurements instead of measuring")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per candidate")
    parser.add_argument("--exports", type=Path, help="keep the ONNX exports in this folder and reuse those there")
    parser.add_argument("--export-only", action="store_true", help="export into --exports, time nothing")
    args = parser.parse_args()
    if args.export_only:
        if not args.exports:
            parser.error("--export-only needs --exports")
        measure(QUICK if args.quick else CLASSIFICATION + DETECTION, args.rounds, args.exports, export_only=True)
        print(f"exported into {args.exports}")
        return

    from recommender.engine.latency import DeviceSpecs
    from recommender.host import read_host_specs
    from tango_common.engines import Accelerator

    host = read_host_specs()
    specs = DeviceSpecs(peak_fp32_gflops=host["peak_fp32_gflops"], memory_bandwidth_gbps=host["memory_bandwidth_gbps"],
                        memory_mb=host["memory_mb"], cpu_only=host["accelerator_kind"] == Accelerator.NONE)
    load_before = os.getloadavg()
    if args.reuse:
        rows = json.loads(args.reuse.read_text())
    else:
        rows = measure(QUICK if args.quick else CLASSIFICATION + DETECTION, args.rounds, args.exports)
        raw = ROOT / "bench" / "results" / "latency_prediction_measurements.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(rows, indent=1))
    rows = [_with_kernels(r) for r in rows]
    results = {key: analyse(rows, specs, key) for key in ("raw_ms", "corrected_ms")}
    for key, title in (("raw_ms", "RAW (as measured)"), ("corrected_ms", "DRIFT-CORRECTED (the headline)")):
        print_table(rows, results[key], title, key)
    # The same records with the networks' totals only (no kernel list): the model before the per-kernel roofline.
    totals = [{**r, "costs": {**r["costs"], "kernels": {}}} for r in rows]
    results["corrected_totals_form"] = {"curve": analyse(totals, specs, "corrected_ms")["curve"]}
    s = results["corrected_totals_form"]["curve"]["all"]
    print(f"totals form (network totals, no kernel list), drift-corrected, all records: {100 * s['within_10']:.0f}% "
          f"within ±10%, {100 * s['within_20']:.0f}% within ±20%, median error {100 * s['median_error']:.1f}%")
    headline = results["corrected_ms"]["curve"]["all"]["within_10"]
    summary = {"candidates": len(rows), "tasks": sorted({r["task"] for r in rows}), "engine": "onnxruntime",
               "precision": "fp32", "batch": 1, "reference": list(REFERENCE),
               "timing": "deployment.engine.timing (the benchmark stage's routine): " + _method()
                         + "; median of the rounds; corrected: relative to the interleaved reference, times its "
                         "median",
               "raw": results["raw_ms"], "corrected": results["corrected_ms"],
               "corrected_totals_form": results["corrected_totals_form"],
               "round_spread_median": {k: statistics.median(r[k] for r in rows)
                                       for k in ("raw_spread", "corrected_spread")},
               "noise": {key: noise(rows, key) for key in ("raw_ms", "corrected_ms")},
               "target_within_10": TARGET_WITHIN_10, "load_average_before": load_before,
               "load_average_after": os.getloadavg(), "cpus": os.cpu_count(), "reused": str(args.reuse or "")}
    out = ROOT / "bench" / "results" / "latency_prediction.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, "
          f"{os.cpu_count()} CPUs")
    raw_headline = results["raw_ms"]["curve"]["all"]["within_10"]
    print(f"raw measurements: {100 * raw_headline:.0f}% within ±10% with all records")
    verdict = "MET" if headline >= TARGET_WITHIN_10 else "MISSED"
    print(f"LOO within ±10% with all records (drift-corrected): {100 * headline:.0f}% of {len(rows)} candidates vs "
          f"target ≥ {100 * TARGET_WITHIN_10:.0f}% … {verdict}")


def analyse(rows, specs, key: str) -> dict:
    from recommender.engine.latency import LatencyModel

    rng = random.Random(0)
    curve = {("all" if k is None else str(k)): summarise(loo(rows, specs, k, rng, key)) for k in STEPS}
    full = LatencyModel.fit(specs, "fp32", [_record(r, key) for r in rows])
    per_candidate = [{"task": r["task"], "model": r["model"], "input_size": r["input_size"], "measured_ms": r[key],
                      "loo_predicted_ms": p} for r, (p, _) in zip(rows, loo(rows, specs, None, rng, key), strict=True)]
    return {"curve": curve, "per_candidate": per_candidate, "fitted_model": full.describe()}


def print_table(rows, result: dict, title: str, key: str) -> None:
    spread = "raw_spread" if key == "raw_ms" else "corrected_spread"
    print(f"\n{title}")
    print(f"{'model':14s} {'px':>4s} {'GFLOPs':>7s} {'measured ms':>12s} {'LOO pred ms':>12s} {'error':>7s} "
          f"{'rounds':>7s}")
    for r, c in zip(rows, result["per_candidate"], strict=True):
        print(f"{r['model']:14s} {r['input_size']:4d} {r['costs']['flops'] / 1e9:7.2f} {c['measured_ms']:12.2f} "
              f"{c['loo_predicted_ms']:12.2f} {100 * (c['loo_predicted_ms'] / c['measured_ms'] - 1):+6.1f}% "
              f"{100 * r[spread]:6.1f}%")
    print(f"{'records used':>12s} {'±10%':>6s} {'±20%':>6s} {'median err':>10s} {'p90 err':>8s} {'Spearman':>8s}")
    for k, s in result["curve"].items():
        print(f"{k:>12s} {100 * s['within_10']:5.0f}% {100 * s['within_20']:5.0f}% {100 * s['median_error']:9.1f}% "
              f"{100 * s['p90_error']:7.1f}% {s['spearman']:8.3f}")
    n = noise(rows, key)
    print(f"measurement noise: median spread between a candidate's rounds {100 * n['median_round_spread']:.1f}%; "
          f"every round within ±10% of the candidate's median for {100 * n['rounds_within_10']:.0f}% of "
          f"candidates; two halves of the rounds (odd, even) agree within ±10% for {100 * n['halves_within_10']:.0f}%, "
          f"within ±5% for {100 * n['halves_within_5']:.0f}% (median gap {100 * n['halves_median_gap']:.1f}%)")


def noise(rows, key: str) -> dict:
    """How reproducible the figures are. rounds_within_10: share of candidates whose every round lies within ±10% of
    the candidate's figure (stricter the more rounds there are); halves: the median of the odd rounds against the
    median of the even ones, each a figure from half the rounds, so their gap bounds the noise of the full figure."""
    rounds = "round_latencies_ms" if key == "raw_ms" else "round_corrected_ms"
    spread = "raw_spread" if key == "raw_ms" else "corrected_spread"
    agree = [max(abs(t / r[key] - 1) for t in r[rounds]) <= 0.10 for r in rows]
    gaps = [abs(statistics.median(r[rounds][0::2]) / statistics.median(r[rounds][1::2]) - 1)
            for r in rows if len(r[rounds]) > 1]
    return {"median_round_spread": statistics.median(r[spread] for r in rows),
            "rounds_within_10": sum(agree) / len(agree),
            "halves_within_10": sum(g <= 0.10 for g in gaps) / max(len(gaps), 1),
            "halves_within_5": sum(g <= 0.05 for g in gaps) / max(len(gaps), 1),
            "halves_median_gap": statistics.median(gaps) if gaps else 0.0}


def _method() -> str:
    from deployment.engine.timing import METHOD

    return METHOD


def _with_kernels(row: dict) -> dict:
    """Measurements saved before the kernel lists (--reuse) are profiled again: the costs are the model's own."""
    if row["costs"].get("kernels"):
        return row
    return {**row, "costs": profile(row["model"], row["input_size"])[1].as_dict()}


def _record(row, key: str):
    from recommender.engine.costs import Costs
    from recommender.engine.latency import Record

    return Record(Costs.from_dict(row["costs"]), row[key])


if __name__ == "__main__":
    main()
