"""How close is the training-time estimate the project page shows before a run to the run's real duration?

The recommend stage times the model on the worker, and the train stage's preview turns that into a run's duration:
- classification: a few training steps, an evaluation pass and the loading of the dataset's own images
  (training/engine/timing.py), multiplied by the run's images and epochs;
- detection: a one-epoch ultralytics run on a few of the dataset's images at the run's size, batch and options
  (training/engine/yolo/timing.py): setup + epochs x (images x per-image costs + checkpoints) + a final validation.
Here both happen in one process on this machine: the estimate, then a real training run of the same model, dataset
and epochs (training.engine.train / training.engine.yolo.train_detector as the train stage calls it), timed end to
end. Datasets: bench/train_defaults.py's photos (3 classes of 64 px crops of scikit-image's photographs) and the
detection demo's objects on backgrounds (its recipe: 240 + 60 images, batch 8, its overrides); nothing is downloaded.

    python bench/train_estimate.py [--models resnet18,densenet121] [--sizes 64] [--per-class 24,6] [--epochs 5]
                                   [--detectors yolo11n] [--detection-size 128] [--detection-epochs 5]

`--models ""` or `--detectors ""` leaves that task out. Prints a table, writes bench/results/train_estimate.json;
the last line says MET when every estimate is within --tolerance (default 30 %) of the measured duration.
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
    parser.add_argument("--detectors", default="yolo11n")
    parser.add_argument("--detection-size", type=int, default=128)
    parser.add_argument("--detection-epochs", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.30)
    args = parser.parse_args()

    rows = [*classification_rows(args), *detection_rows(args)]
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


def classification_rows(args) -> list[dict]:
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
        for model in filter(None, args.models.split(",")):
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
                rows.append(_row(model, size, args.epochs, trained, facts.n_val, estimate,
                                 time.perf_counter() - started, torch.get_num_threads(), cost.as_dict()))
    return rows


def detection_rows(args) -> list[dict]:
    """The detection demo's dataset and recipe (bench/detection_demo.py trains it whole), for fewer epochs."""
    import torch

    from projects.datasets.detection_demo import DEMO_RECIPE, write_detection_demo
    from training.engine.yolo.timing import split_images, time_detector_training
    from training.engine.yolo.train import train_detector

    rows = []
    with tempfile.TemporaryDirectory(prefix="tango-bench-estimate-detect-") as tmp:
        folder = write_detection_demo(Path(tmp) / "dataset", train=DEMO_RECIPE["train"], val=DEMO_RECIPE["val"],
                                      size=DEMO_RECIPE["image_size"], seed=0)
        n_train, n_val = (len(images) for images in split_images(folder))
        recipe = {"input_size": args.detection_size, "epochs": args.detection_epochs, "batch": DEMO_RECIPE["batch"],
                  "overrides": DEMO_RECIPE["overrides"], "device": "cpu"}
        for model in filter(None, args.detectors.split(",")):
            cost = time_detector_training(model, data_dir=folder, data_root=Path(tmp) / "data", **recipe)
            estimate = cost.run_seconds(epochs=args.detection_epochs, n_train=n_train, n_val=n_val)
            started = time.perf_counter()
            train_detector(data_dir=folder, model=model, out_dir=Path(tmp) / model, data_root=Path(tmp) / "data",
                           patience=0, **recipe)  # predictions of 6 val images included, as the train stage asks
            rows.append(_row(model, args.detection_size, args.detection_epochs, n_train, n_val, estimate,
                             time.perf_counter() - started, torch.get_num_threads(), cost.as_dict()))
    return rows


def _row(model, size, epochs, n_train, n_val, estimate, measured, threads, cost) -> dict:
    print(f"  {model:12} {size:4d} px: estimate {estimate:7.1f} s, measured {measured:7.1f} s", flush=True)
    return {"model": model, "input_size": size, "epochs": epochs, "train_images": n_train, "val_images": n_val,
            "estimate_s": round(estimate, 1), "measured_s": round(measured, 1),
            "error": round(estimate / measured - 1, 3), "threads": threads, "cost": cost}


if __name__ == "__main__":
    raise SystemExit(main())
