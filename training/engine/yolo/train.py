"""Detection training through ultralytics, offline, with the portal's report/cancel/resume contract.

`train_detector(...)` takes plain arguments. Ultralytics' console (its logger) reaches `report` line by line;
`report(None, progress=p)` is called after every batch, so a report that raises (the portal's cancel) stops
training at the next batch; `on_epoch(record)` receives each epoch's losses and validation metrics. Ultralytics
writes `last.pt` after every epoch, so `resume=True` continues from the last finished epoch of the same out_dir.

out_dir layout (ultralytics' own): data.yaml (the dataset with absolute paths), weights/last.pt and best.pt,
results.csv; plus result.json written here at the end.
"""

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import offline
from .zoo import LABELS, build_detection_model, detection_gflops, model_yaml

Report = Callable[..., None]
LOSS_KEYS = ("box_loss", "cls_loss", "dfl_loss")
METRIC_KEYS = {"precision": "metrics/precision(B)", "recall": "metrics/recall(B)", "map50": "metrics/mAP50(B)",
               "map50_95": "metrics/mAP50-95(B)"}
PR_POINTS = 101  # recall grid of the PR curves kept in the result (ultralytics computes 1000)
MAX_SHOWN_BOXES = 20  # predicted boxes kept per validation image shown on the page


@dataclass
class DetectionResult:
    history: list[dict]
    final: dict  # precision, recall, map50, map50_95 of best.pt on the val split
    per_class: list[dict]  # name, images, instances, precision, recall, ap50, ap50_95
    pr_curve: dict  # recall grid and, per class, precision at IoU 0.5
    predictions: list[dict]  # a few val images: path, true boxes, predicted boxes (pixels)
    weights_path: str
    best_epoch: int
    epochs_completed: int
    params: int
    gflops: float | None  # None where thop cannot profile the network
    device: str
    seconds: float
    class_names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class _LineHandler(logging.Handler):
    """Forwards ultralytics' log records to report(), one line at a time, without ANSI colours, and with the data
    folder's path taken off the paths it prints (its label caches, its results folder): the console is the users'
    and shows no server paths."""

    def __init__(self, report: Report, data_root: Path | None = None):
        super().__init__(logging.INFO)
        self.report = report
        self.data_root = f"{Path(data_root).resolve()}/" if data_root else None

    def emit(self, record: logging.LogRecord) -> None:
        from ultralytics.utils import remove_colorstr

        for line in remove_colorstr(record.getMessage()).splitlines():
            if line.strip():
                self.report(line.rstrip().replace(self.data_root, "") if self.data_root else line.rstrip())


def write_data_yaml(data_dir: Path, out_dir: Path) -> tuple[Path, list[str]]:
    """A copy of the dataset's data.yaml with an absolute path: ultralytics resolves a relative one against its
    own datasets folder, not against the file."""
    data_dir = Path(data_dir).resolve()
    doc = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8"))
    names = doc["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    out = {"path": str(data_dir), "train": doc.get("train", "images/train"), "val": doc.get("val", "images/val"),
           "names": dict(enumerate(names))}
    path = Path(out_dir) / "data.yaml"
    path.write_text(yaml.safe_dump(out, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, names


def read_weights(path: Path) -> dict:
    """A state dict from a user's file: a plain state dict, or an ultralytics checkpoint (its EMA or model).
    Loaded with weights_only / ultralytics' restricted loader: pickled code never runs."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # an ultralytics checkpoint pickles its model classes; the allow-listed loader reads them
        from ultralytics.nn.tasks import torch_safe_load

        try:
            state = torch_safe_load(path, safe_only=True)[0]
        except Exception as error:
            raise ValueError(f"{path.name} is not a PyTorch weights file ({type(error).__name__}).") from error
    if isinstance(state, dict) and any(k in state for k in ("ema", "model")):
        module = state.get("ema") or state.get("model")
        state = module.float().state_dict() if hasattr(module, "state_dict") else module
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict or an ultralytics checkpoint.")
    return state


def warm_start(model, weights_path: Path, report: Report) -> dict:
    """Load every tensor whose name and shape match; say which loaded and which did not."""
    state = read_weights(weights_path)
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not loaded:
        raise ValueError(f"{Path(weights_path).name}: no tensor matches this model; is it a checkpoint of it?")
    model.load_state_dict(loaded, strict=False)
    skipped = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    summary = {"loaded": sorted(loaded), "skipped_shape": skipped, "missing": sorted(set(own) - set(loaded)),
               "unexpected": sorted(set(state) - set(own))}
    line = f"weights {Path(weights_path).name}: loaded {len(loaded)}/{len(own)} tensors"
    if skipped:
        line += f"; skipped (shape differs): {', '.join(skipped)}"
    if summary["unexpected"]:
        line += f"; ignored {len(summary['unexpected'])} tensors this model lacks"
    report(line)
    return summary


def train_detector(*, data_dir: Path, model: str, out_dir: Path, data_root: Path, input_size: int = 640,
                   epochs: int = 100, batch: int = 16, device: str = "cpu", weights: Path | None = None,
                   resume: bool = False, report: Report | None = None, on_epoch: Callable[[dict], None] | None = None,
                   workers: int = 0, seed: int = 0, patience: int = 100, n_predictions: int = 6,
                   overrides: dict | None = None) -> DetectionResult:
    """Train `model` (a zoo name or a model .yaml) on a YOLO-layout dataset; see the module docstring."""
    say = report or (lambda line, progress=None: None)
    offline.configure(data_root)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_yaml, names = write_data_yaml(data_dir, out_dir)
    last = out_dir / "weights" / "last.pt"
    args = {
        "model": model_yaml(model) if model in LABELS else str(model),
        "data": str(data_yaml), "imgsz": input_size, "epochs": epochs, "batch": batch, "device": device,
        "workers": workers, "seed": seed, "patience": patience, "project": str(out_dir.parent),
        "name": out_dir.name, "exist_ok": True, "plots": False, "verbose": True, "amp": device != "cpu",
        "pretrained": False, **(overrides or {}),
    }
    if resume and last.exists():
        args["resume"] = str(last)
    run = _Run(args=args, say=say, on_epoch=on_epoch, data_root=data_root)
    model_obj = None
    if "resume" not in args:
        model_obj = build_detection_model(model, nc=len(names))
        if weights is not None:
            warm_start(model_obj, weights, say)
    elif resume:
        say(f"resuming from {last.name} (epoch {run.checkpoint_epoch(last)} of {epochs} done)")
    trainer = run.start(model_obj)
    return _result(trainer, run, names, out_dir, data_dir, n_predictions, say)


class _Run:
    """One ultralytics training with the portal's callbacks attached."""

    def __init__(self, *, args: dict, say: Report, on_epoch, data_root: Path | None = None,
                 callbacks: dict | None = None):
        self.args, self.say, self.on_epoch, self.data_root = args, say, on_epoch, data_root
        self.callbacks = callbacks or {}  # more of ultralytics' callbacks (event -> fn(trainer)): timing.py's clock
        self.history: list[dict] = []
        self.started = time.perf_counter()
        self.final_eval_started = False
        self.epoch_started: float | None = None
        self.train_seconds: float | None = None

    @staticmethod
    def checkpoint_epoch(path: Path) -> int:
        from ultralytics.nn.tasks import torch_safe_load

        return int(torch_safe_load(path, safe_only=True)[0].get("epoch", -1)) + 1

    def start(self, model):
        from ultralytics.engine import trainer as trainer_module
        from ultralytics.models.yolo.detect import DetectionTrainer
        from ultralytics.utils import LOGGER

        trainer = DetectionTrainer(overrides=self.args)
        if model is not None:
            trainer.model = model  # setup_model() keeps a module it is given
        trainer.add_callback("on_train_epoch_start", self._epoch_start)
        trainer.add_callback("on_train_epoch_end", self._train_phase_end)
        trainer.add_callback("on_train_batch_end", self._batch_end)
        trainer.add_callback("on_fit_epoch_end", self._epoch_end)
        for event, callback in self.callbacks.items():
            trainer.add_callback(event, callback)
        final_eval = trainer.final_eval

        def final_eval_marked():  # it re-runs on_fit_epoch_end for best.pt; the result, not the history, has that
            self.final_eval_started = True
            return final_eval()

        trainer.final_eval = final_eval_marked
        handler = _LineHandler(self.say, self.data_root)
        LOGGER.addHandler(handler)
        amp_check = trainer_module.check_amp
        trainer_module.check_amp = offline.local_amp_check  # the stock one downloads yolo26n.pt
        try:
            trainer.train()
        finally:
            trainer_module.check_amp = amp_check
            LOGGER.removeHandler(handler)
            _close_loaders(trainer)
        return trainer

    def _epoch_start(self, trainer) -> None:
        self.epoch_started = time.perf_counter()

    def _train_phase_end(self, trainer) -> None:
        if self.epoch_started is not None:
            self.train_seconds = time.perf_counter() - self.epoch_started

    def _batch_end(self, trainer) -> None:
        batches = len(trainer.train_loader)
        done = trainer.epoch * batches + _batch_index(trainer, batches) + 1
        self.say(None, progress=min(99.0, 100 * done / (trainer.epochs * batches)))  # may raise: a cancel

    def _epoch_end(self, trainer) -> None:
        if self.final_eval_started:
            return
        losses = {k: float(v) for k, v in (trainer.tloss or {}).items()} if isinstance(trainer.tloss, dict) else \
            dict(zip(LOSS_KEYS, (float(x) for x in trainer.tloss), strict=False))
        record = {"epoch": trainer.epoch + 1, **{k: losses.get(k) for k in LOSS_KEYS},
                  **{k: float(trainer.metrics.get(v, 0.0)) for k, v in METRIC_KEYS.items()},
                  **{f"val_{k}": float(trainer.metrics.get(f"val/{k}", math.nan)) for k in LOSS_KEYS},
                  "lr": float(next(iter(trainer.lr.values()))) if getattr(trainer, "lr", None) else None,
                  **_throughput(trainer, self.train_seconds),
                  "seconds": round(time.perf_counter() - self.started, 2)}
        self.history.append(record)
        self.say(_epoch_line(record, trainer.epochs), progress=min(99.0, 100 * record["epoch"] / trainer.epochs))
        if self.on_epoch is not None:
            self.on_epoch(record)


def _throughput(trainer, seconds: float | None) -> dict:
    """The epoch's training phase (its batches, not validation): images and images per second."""
    if not seconds:
        return {}
    images = len(trainer.train_loader.dataset)
    return {"train_images": images, "train_seconds": round(seconds, 3), "images_per_s": round(images / seconds, 2)}


def _batch_index(trainer, batches: int) -> int:
    # ultralytics does not keep the batch index; count calls since the epoch began
    counter = trainer.__dict__.setdefault("_tango_batches", {})
    counter[trainer.epoch] = counter.get(trainer.epoch, -1) + 1
    return min(counter[trainer.epoch], batches - 1)


def _epoch_line(r: dict, epochs: int) -> str:
    losses = " ".join(f"{k.split('_')[0]} {r[k]:.3f}" for k in LOSS_KEYS if r.get(k) is not None)
    return (f"epoch {r['epoch']}/{epochs}: {losses} | P {r['precision']:.3f} R {r['recall']:.3f} "
            f"mAP50 {r['map50']:.3f} mAP50-95 {r['map50_95']:.3f}")


def _close_loaders(trainer) -> None:
    for loader in (getattr(trainer, "train_loader", None), getattr(trainer, "test_loader", None)):
        if hasattr(loader, "close"):
            loader.close()


def _result(trainer, run: _Run, names: list[str], out_dir: Path, data_dir: Path, n_predictions: int,
            say: Report) -> DetectionResult:
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    metrics = trainer.validator.metrics  # final_eval() validated best.pt last
    box = metrics.box
    per_class = _per_class(metrics, names)
    final = {k: float(trainer.metrics.get(v, 0.0)) for k, v in METRIC_KEYS.items()}
    model = trainer.model if hasattr(trainer.model, "yaml") else trainer.ema.ema
    gflops = detection_gflops(model, trainer.args.imgsz)
    history = run.history or _history_from_csv(out_dir)
    result = DetectionResult(
        history=history, final=final, per_class=per_class, pr_curve=_pr_curve(box, names),
        predictions=predict_samples(best, data_dir, trainer.args.imgsz, n_predictions, trainer.args.device),
        weights_path=str(best), best_epoch=_best_epoch(history), epochs_completed=trainer.epoch + 1,
        params=sum(p.numel() for p in model.parameters()), gflops=gflops,
        device=str(trainer.device), seconds=round(time.perf_counter() - run.started, 2), class_names=names,
    )
    (out_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
    say(f"done: mAP50 {final['map50']:.3f}, mAP50-95 {final['map50_95']:.3f} (best epoch {result.best_epoch}); "
        f"weights {best.name}", progress=100.0)
    return result


def _per_class(metrics, names: list[str]) -> list[dict]:
    box = metrics.box
    rows = {i: {"name": n, "images": 0, "instances": 0, "precision": None, "recall": None, "ap50": None,
                "ap50_95": None} for i, n in enumerate(names)}
    counts = getattr(metrics, "nt_per_class", None)
    images = getattr(metrics, "nt_per_image", None)
    for i in rows:
        rows[i]["instances"] = int(counts[i]) if counts is not None and i < len(counts) else 0
        rows[i]["images"] = int(images[i]) if images is not None and i < len(images) else 0
    for j, c in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(j)
        rows[int(c)].update(precision=float(p), recall=float(r), ap50=float(ap50), ap50_95=float(ap))
    return list(rows.values())


def _pr_curve(box, names: list[str]) -> dict:
    import numpy as np

    grid = np.linspace(0, 1, PR_POINTS)
    curves = {}
    px, prec = np.asarray(box.px), np.asarray(box.prec_values)
    for j, c in enumerate(box.ap_class_index):
        if j < len(prec):
            curves[names[int(c)]] = [round(float(v), 4) for v in np.interp(grid, px, prec[j])]
    return {"recall": [round(float(v), 4) for v in grid], "precision": curves}


def _best_epoch(history: list[dict]) -> int:
    if not history:
        return 0
    # ultralytics' fitness: 0.1 mAP50 + 0.9 mAP50-95
    return max(history, key=lambda r: 0.1 * r["map50"] + 0.9 * r["map50_95"])["epoch"]


def _history_from_csv(out_dir: Path) -> list[dict]:
    import csv

    path = out_dir / "results.csv"
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            row = {k.strip(): v for k, v in row.items()}
            rows.append({"epoch": int(float(row["epoch"])),
                         **{k: float(row[f"train/{k}"]) for k in LOSS_KEYS if f"train/{k}" in row},
                         **{k: float(row[v]) for k, v in METRIC_KEYS.items() if v in row}})
    return rows


def predict_samples(weights: Path, data_dir: Path, imgsz: int, n: int, device) -> list[dict]:
    """Predicted and true boxes (pixels) for the first n val images, for the page's side-by-side view."""
    if n <= 0:
        return []
    from ultralytics import YOLO

    data_dir = Path(data_dir)
    images = sorted((data_dir / "images" / "val").glob("*"))[:n]
    if not images:
        return []
    model = YOLO(str(weights), task="detect")
    samples = []
    predictions = model.predict([str(p) for p in images], imgsz=imgsz, device=device, verbose=False, conf=0.25,
                                max_det=MAX_SHOWN_BOXES)
    for result in predictions:
        path = Path(result.path)
        h, w = result.orig_shape
        boxes = result.boxes
        predicted = [{"cls": int(c), "conf": round(float(s), 4), "box": [round(float(v), 1) for v in b]}
                     for b, s, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True)]
        samples.append({"image": path.name, "width": w, "height": h, "predicted": predicted,
                        "true": read_true_boxes(data_dir / "labels" / "val" / f"{path.stem}.txt", w, h)})
    return samples


def read_true_boxes(label_path: Path, width: int, height: int) -> list[dict]:
    if not label_path.exists():
        return []
    boxes = []
    for line in label_path.read_text().splitlines():
        if line.strip():
            c, cx, cy, bw, bh = (float(v) for v in line.split())
            boxes.append({"cls": int(c), "box": [round((cx - bw / 2) * width, 1), round((cy - bh / 2) * height, 1),
                                                 round((cx + bw / 2) * width, 1), round((cy + bh / 2) * height, 1)]})
    return boxes
