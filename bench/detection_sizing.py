"""How big a detector a tiny dataset can train from scratch: the detection demo cut to a few training images, each
model trained with the demo recipe on this CPU, mAP50 on the demo's full val split.

The walk that asked for it: a 32-image detection project was recommended YOLOv7-W6 (70M parameters), trained 3
epochs to mAP50 0.000, and the question was whether detection should be sized to the dataset as classification is
(training.engine.sizing). It should not, on this evidence: 32 training images of the demo (128 px, the demo recipe,
seed 0, one run each, this 2-core CPU shared), mAP50 on the 60 val images after 30 epochs: YOLO11n (2.6M) 0.117,
YOLO11s (9.4M) 0.321, YOLOv7-W6 (70M) 0.457 (mAP50-95 0.049 / 0.120 / 0.252; 61 / 162 / 558 s). At 10 epochs
YOLO11n was still at 0.000 (W6 not run to 10): the walk's 0.000 after 3 epochs points at the epochs, not the size.
Prints a table, writes bench/results/detection_sizing.json; the last line is the verdict.

    python bench/detection_sizing.py [--train 32] [--epochs 30] [--models yolo11n,yolo11s,yolov7-w6]

The verdict tests the hypothesis that the first (smallest) model trains better than the last (largest).
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
    from projects.datasets.detection_demo import DEMO_RECIPE, write_detection_demo
    from training.engine.yolo.train import train_detector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", default="yolo11n,yolo11s,yolov7-w6")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tango-bench-detsize-"))
    data_dir = write_detection_demo(work / "dataset", train=args.train, val=DEMO_RECIPE["val"],
                                    size=DEMO_RECIPE["image_size"], seed=0)
    rows = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        result = train_detector(data_dir=data_dir, model=name, out_dir=work / name, data_root=work / "data",
                                input_size=DEMO_RECIPE["input_size"], epochs=args.epochs,
                                batch=DEMO_RECIPE["batch"], device="cpu", overrides=DEMO_RECIPE["overrides"],
                                n_predictions=0)
        rows.append({"model": name, "train_images": args.train, "val_images": DEMO_RECIPE["val"],
                     "epochs": args.epochs, "map50": round(result.final["map50"], 4),
                     "map50_95": round(result.final["map50_95"], 4),
                     "best_map50": round(max(h["map50"] for h in result.history), 4),
                     "wall_seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'model':<14}{'train':>6}{'epochs':>7}{'mAP50':>8}{'best':>8}{'mAP50-95':>10}{'wall s':>8}")
    for r in rows:
        print(f"{r['model']:<14}{r['train_images']:>6}{r['epochs']:>7}{r['map50']:>8.3f}{r['best_map50']:>8.3f}"
              f"{r['map50_95']:>10.3f}{r['wall_seconds']:>8.0f}")
    out = ROOT / "bench" / "results" / "detection_sizing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    small, large = rows[0], rows[-1]
    met = small["map50"] > large["map50"]
    print(f"detection sizing: {small['model']} mAP50 {small['map50']:.3f} vs {large['model']} {large['map50']:.3f} "
          f"on {args.train} training images, {args.epochs} epochs: the smaller trains better … "
          f"{'MET' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
