"""How close is the training-time estimate the project page shows before a run to the run's real duration?

The recommend stage times a few training steps of the model on the worker (training/engine/timing.py); the train
stage's preview multiplies that by the run's images and epochs. Here both happen in one process on this machine:
the estimate from time_training, then a real training run (training.engine.train) of the same model, dataset and
epochs, timed end to end. Datasets: bench/train_defaults.py's photos (3 classes of 64 px crops of scikit-image's
photographs; nothing is downloaded).

    python bench/train_estimate.py [--models resnet18,densenet121] [--sizes 64] [--per-class 24,6] [--epochs 5]

Prints a table, writes bench/results/train_estimate.json; the last line says MET when every estimate is within
--tolerance (default 30 %) of the measured duration.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet18,densenet121")
    parser.add_argument("--sizes", default="64")
    parser.add_argument("--per-class", default="24,6", help="train,val images per class")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.30)
    args = parser.parse_args()

    import torch

    from bench.train_defaults import build
    from training.engine.defaults import data_facts, resolve
    from training.engine.timing import time_training
    from training.engine.train import TrainConfig, train

    train_n, val_n = (int(n) for n in args.per_class.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="tango-bench-estimate-") as tmp:
        folder, classes = build("photos", Path(tmp), per_class={"train": train_n, "val": val_n})
        facts = data_facts(folder, classes)
        for model in args.models.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                cost = time_training(model, data_dir=folder, class_names=classes, input_size=size, device="cpu")
                values, _ = resolve({"epochs": args.epochs}, facts)
                batch = values["batch_size"]
                trained = facts.n_train // batch * batch or facts.n_train
                estimate = cost.run_seconds(epochs=args.epochs, n_train=trained, n_val=facts.n_val)
                config = TrainConfig.from_dict({**values, "model": model, "input_size": size, "device": "cpu"})
                started = time.perf_counter()
                train(data_dir=folder, class_names=classes, config=config, out_dir=Path(tmp) / f"{model}-{size}",
                      resume=False, report=lambda line=None, progress=None: None)
                measured = time.perf_counter() - started
                rows.append({"model": model, "input_size": size, "epochs": args.epochs, "train_images": trained,
                             "val_images": facts.n_val, "estimate_s": round(estimate, 1),
                             "measured_s": round(measured, 1), "error": round(estimate / measured - 1, 3),
                             "threads": torch.get_num_threads(), "cost": cost.as_dict()})
                print(f"  {model:12} {size:4d} px: estimate {estimate:7.1f} s, measured {measured:7.1f} s", flush=True)

    print()
    print(f"{'model':12} {'px':>4} {'epochs':>6} {'train':>5} {'val':>4} {'estimate s':>10} {'measured s':>10} "
          f"{'error':>7}")
    for r in rows:
        print(f"{r['model']:12} {r['input_size']:4d} {r['epochs']:6d} {r['train_images']:5d} {r['val_images']:4d} "
              f"{r['estimate_s']:10.1f} {r['measured_s']:10.1f} {100 * r['error']:+6.0f}%")
    met = all(abs(r["error"]) <= args.tolerance for r in rows)
    out = ROOT / "bench" / "results" / "train_estimate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tolerance": args.tolerance, "rows": rows, "met": met}, indent=2))
    worst = max(abs(r["error"]) for r in rows)
    print(f"Training-time estimate within {100 * args.tolerance:.0f}% of the measured run (worst "
          f"{100 * worst:.0f}%): {'MET' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
