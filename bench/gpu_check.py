"""The CUDA path of the Django-free training core, on a GPU machine (run where a GPU is lent; needs torch only).

1. Trains ResNet-18 on a generated 3-class image set three ways, same seed and epochs: CUDA fp32, CUDA with AMP
   (float16 autocast + GradScaler, the core's default on CUDA) and, for the accuracy reference, CPU. Reports val
   top-1, images/s and the AMP speed-up.
2. Resume on CUDA: a run stopped after half its epochs continues from last.pt to the same final accuracy.
3. GPU inference latency of ResNet-18 at 224 px, batch 1, PyTorch eager fp32 against fp16 (p50 of 200 after warm-up).

    python bench/gpu_check.py [--epochs 6]

Prints a table, writes bench/results/gpu_check.json; the last line: AMP top-1 within 2 points of fp32 and faster,
MET or MISSED.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "gpu_check.json"


def quiet(line=None, progress=None):
    pass


def train_once(data: Path, classes: list[str], out: Path, *, device: str, amp: bool, epochs: int,
               stop_after: int | None = None) -> dict:
    from training.engine.train import TrainConfig, train

    config = TrainConfig(model="resnet18", epochs=epochs, batch_size=64, lr=0.05, warmup_epochs=1,
                         label_smoothing=0.1, device=device, amp=amp, input_size=64, seed=0)

    class Stop(Exception):
        pass

    def on_epoch(record):
        if stop_after is not None and record["epoch"] == stop_after:
            raise Stop

    started = time.perf_counter()
    try:
        result = train(data_dir=data, class_names=classes, config=config, out_dir=out, report=quiet,
                       on_epoch=on_epoch)
    except Stop:
        return {"stopped_at": stop_after}
    seconds = time.perf_counter() - started
    # Training throughput of the epochs after the first (the first pays cuDNN's autotuning and the CUDA context).
    steady = [r["images_per_s"] for r in result.history[1:]] or [result.history[0]["images_per_s"]]
    return {"device": result.device, "amp": amp, "top1": result.best_top1, "seconds": round(seconds, 2),
            "images_per_s": round(statistics.median(steady), 1), "epochs": len(result.history)}


def inference_latency(dtype) -> float:
    import torch
    import torchvision

    model = torchvision.models.resnet18(num_classes=1000).eval().cuda().to(dtype)
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=dtype)
    times = []
    with torch.inference_mode():
        for i in range(250):
            torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            torch.cuda.synchronize()
            if i >= 50:
                times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    import torch

    from training.engine.synthetic import make_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    assert torch.cuda.is_available(), "no CUDA GPU here"
    work = Path(tempfile.mkdtemp(prefix="tango-gpu-"))
    classes = make_dataset(work / "data", per_class=300, val_per_class=60, size=64)
    runs = {
        "cuda fp32": train_once(work / "data", classes, work / "fp32", device="cuda", amp=False, epochs=args.epochs),
        "cuda amp": train_once(work / "data", classes, work / "amp", device="cuda", amp=True, epochs=args.epochs),
        "cpu fp32": train_once(work / "data", classes, work / "cpu", device="cpu", amp=False, epochs=args.epochs),
    }
    train_once(work / "data", classes, work / "resume", device="cuda", amp=True, epochs=args.epochs,
               stop_after=args.epochs // 2)
    runs["cuda amp resumed"] = train_once(work / "data", classes, work / "resume", device="cuda", amp=True,
                                          epochs=args.epochs)
    latency = {"fp32": inference_latency(torch.float32), "fp16": inference_latency(torch.float16)}

    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'run':<18}{'top-1':>8}{'images/s':>11}{'seconds':>9}")
    for name, run in runs.items():
        print(f"{name:<18}{100 * run['top1']:>7.1f}%{run['images_per_s'] or 0:>11.0f}{run['seconds']:>9.1f}")
    print(f"ResNet-18 224 px batch 1 eager: fp32 {latency['fp32']:.2f} ms, fp16 {latency['fp16']:.2f} ms "
          f"({latency['fp32'] / latency['fp16']:.2f}x)")
    fp32, amp = runs["cuda fp32"], runs["cuda amp"]
    gap = 100 * (fp32["top1"] - amp["top1"])
    speedup = (amp["images_per_s"] or 0) / max(fp32["images_per_s"] or 1, 1e-9)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"gpu": torch.cuda.get_device_name(0), "runs": runs, "latency_ms": latency,
                                   "amp_gap_points": gap, "amp_speedup": speedup}, indent=2))
    met = gap <= 2.0 and speedup > 1.0
    print(f"AMP: top-1 {gap:+.1f} points from fp32 (target within 2), {speedup:.2f}x images/s: "
          f"{'MET' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
