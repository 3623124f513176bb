"""Apache TVM on this server's CPU: PyTorch eager against TVM untuned and TVM tuned (MetaSchedule within a trial and
time budget), ResNet-18 at 224 px, batch 1, one thread, random weights; outputs compared. Prints a table, writes
JSON, and the last line says whether tuned TVM beat PyTorch eager here ("MET") or not ("MISSED").

    python bench/tvm_tune.py [--trials 64] [--seconds 600] [--size 224] [--json out.json]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", default="tvm_tune.json")
    args = parser.parse_args()

    import numpy as np
    import torch
    import torchvision

    from deployment.engine.converters import registry
    from deployment.engine.converters.base import Source
    from deployment.engine.converters.tvm import latency_ms
    from deployment.engine.onnx_export import export_onnx

    torch.set_num_threads(1)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    work = Path(tempfile.mkdtemp(prefix="tvm-bench-"))
    onnx_path = export_onnx(model, input_size=args.size, path=work / "resnet18.onnx")
    source = Source(onnx_path=onnx_path, task="classification", input_size=args.size, torch_model=model)
    untuned = registry.convert("tvm", source, precision="fp32", out_dir=work / "untuned", report=print)
    tuned = registry.convert("tvm", source, precision="fp32", out_dir=work / "tuned", report=print,
                             options={"tune_trials": args.trials, "tune_seconds": args.seconds})
    batch = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)

    def eager(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    runners = {"PyTorch eager": eager, "TVM untuned": registry.load(untuned, threads=1),
               "TVM tuned": registry.load(tuned, threads=1)}
    reference = eager(batch)
    rows = []
    for name, run in runners.items():
        ms = latency_ms(run, args.size, warmup=2, repeat=10)
        rows.append({"engine": name, "latency_ms": round(ms, 2),
                     "max_abs_diff": float(np.abs(run(batch) - reference).max())})
    base = rows[0]["latency_ms"]
    print(f"\n{'engine':<16}{'p50 ms':>10}{'vs eager':>10}{'max |diff|':>12}")
    for row in rows:
        row["speedup_vs_eager"] = round(base / row["latency_ms"], 2)
        print(f"{row['engine']:<16}{row['latency_ms']:>10.2f}{row['speedup_vs_eager']:>9.2f}x{row['max_abs_diff']:>12.2e}")
    tuning = json.loads(tuned.path.with_suffix(".json").read_text())["tuning"]
    print(f"tuning: {tuning}")
    Path(args.json).write_text(json.dumps({"rows": rows, "tuning": tuning, "size": args.size}, indent=2))
    met = rows[2]["latency_ms"] < rows[0]["latency_ms"]
    print(f"tuned TVM vs PyTorch eager: {'MET' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
