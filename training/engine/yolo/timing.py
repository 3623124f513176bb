"""How long a detector's training run will take on this machine, measured rather than guessed. Django-free.

A short run of ultralytics' own trainer (the loop the train stage runs: its loading and augmentation, loss,
optimizer steps, EMA, validation with NMS, checkpoints) trains the model for one epoch on a few of the dataset's
own images at the run's input size, batch and overrides, and its callbacks time each part. A run's duration is then
    setup + epochs x (training images x train_s + validation images x eval_s + epoch_s) + validation of best.pt
The worker that times is the one that trains (same threads, same device), so the figure is this server's.
"""

import dataclasses
import functools
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

TIMED_BATCHES = 2  # after one untimed warm-up batch (allocations, kernel selection, the loader starting)
VALIDATED_BATCHES = 1  # ultralytics validates in batches of twice the training batch


@dataclass(frozen=True)
class DetectionCost:
    """Seconds, measured."""

    train_s: float  # per training image: loading and augmenting it, forward, loss, backward, optimizer steps
    eval_s: float  # per validation image: loading, forward, NMS and the metrics
    epoch_s: float  # per epoch beyond its images: the checkpoints ultralytics saves (last.pt, best.pt)
    setup_s: float  # once per run: the trainer, the model, the data loaders; the end (stripping the checkpoints)
    model: str
    input_size: int
    batch: int
    device: str
    threads: int
    network: str = ""  # the edited network timed instead of the zoo detector `model` (its label); "" for the zoo's
    params: int = 0  # parameters of the network timed (0: a record from before it was kept)

    def epoch_seconds(self, *, n_train: int, n_val: int) -> float:
        """One epoch: training, validation, checkpoints."""
        return n_train * self.train_s + n_val * self.eval_s + self.epoch_s

    def run_seconds(self, *, epochs: int, n_train: int, n_val: int) -> float:
        """Every epoch, then best.pt validated once more."""
        return self.setup_s + epochs * self.epoch_seconds(n_train=n_train, n_val=n_val) + n_val * self.eval_s

    def as_dict(self) -> dict:
        return asdict(self)


def time_detector_training(model: str, *, data_dir: Path, data_root: Path, input_size: int, batch: int,
                           epochs: int, overrides: dict | None = None, device: str = "cpu", spec: dict | None = None,
                           network: str = "") -> DetectionCost:
    """Raises ValueError where the dataset has no training or no validation images. spec: the model dict that will
    train when it is not the zoo's `model` (one edited in the visualiser, named `network`)."""
    from . import offline

    offline.configure(Path(data_root))
    train, val = split_images(Path(data_dir))
    cost = _timed(model, str(Path(data_dir).resolve()), tuple(map(str, train[:(1 + TIMED_BATCHES) * batch])),
                  tuple(map(str, val[:VALIDATED_BATCHES * 2 * batch])), input_size, batch,
                  _mosaic_epochs(epochs, overrides or {}) * 2 > epochs, json.dumps(overrides or {}, sort_keys=True),
                  device, yaml.safe_dump(spec, sort_keys=False) if spec else "")
    return dataclasses.replace(cost, network=network if spec else "")


# A worker process times a model once per dataset, size, batch, options, device and edited model dict (a second
# recommend of the same project costs nothing); the images timed are part of the key. The thread count is not:
# ultralytics' trainer sets its own on CPU (select_device), the same for this run and the real one.
@functools.lru_cache(maxsize=16)
def _timed(model: str, data_dir: str, train: tuple, val: tuple, input_size: int, batch: int, mosaic: bool,
           overrides: str, device: str, spec: str) -> DetectionCost:
    import torch
    from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: F401 - imported before the clock starts

    from .train import _Run
    from .zoo import LABELS, build_detection_model, model_yaml

    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="tango-detect-timing-") as tmp:
        subset = _subset(Path(data_dir), Path(tmp) / "data", train, val)
        built = model_yaml(model) if model in LABELS else model
        if spec:  # the edited model dict, as the train stage writes it for ultralytics
            built = Path(tmp) / "network.yaml"
            built.write_text(spec, encoding="utf-8")
        args = {
            "model": str(built), "data": str(subset), "imgsz": input_size,
            "epochs": 1, "batch": batch, "device": device, "workers": 0, "seed": 0, "patience": 0,
            "project": tmp, "name": "run", "exist_ok": True, "plots": False, "verbose": False,
            "amp": device != "cpu", "pretrained": False, **json.loads(overrides),
            # One epoch: the run's own would close mosaic at once (close_mosaic >= 1). Time the augmentation most
            # of the run's epochs use.
            "close_mosaic": 0 if mosaic else 1,
        }
        names = yaml.safe_load(subset.read_text(encoding="utf-8"))["names"]
        network = build_detection_model(str(built) if spec else model, nc=len(names))
        params = sum(p.numel() for p in network.parameters())
        clock.started = time.perf_counter()
        _Run(args=args, say=lambda line=None, progress=None: None, on_epoch=None,
             callbacks=clock.callbacks()).start(network)
        clock.ended = time.perf_counter()
    return clock.cost(model=model, input_size=input_size, batch=batch, device="cpu" if device == "cpu" else "cuda",
                      threads=torch.get_num_threads(), params=params,
                      n_train=len(train), n_val=len(val))


class _Clock:
    """The trainer's callbacks, timestamped."""

    EVENTS = ("on_train_start", "on_train_epoch_start", "on_train_batch_end", "on_val_start", "on_val_end",
              "on_fit_epoch_end")

    def __init__(self):
        self.times: dict[str, list[float]] = {event: [] for event in self.EVENTS}
        self.started = self.ended = 0.0

    def callbacks(self) -> dict:
        return {event: functools.partial(self._mark, event) for event in self.EVENTS}

    def _mark(self, event: str, trainer) -> None:
        self.times[event].append(time.perf_counter())

    def cost(self, *, n_train: int, n_val: int, batch: int, **about) -> DetectionCost:
        t = self.times
        ends = t["on_train_batch_end"]
        # The batches after the first (warm-up); a dataset of one batch has only the first to go on.
        timed = [b - a for a, b in zip(ends, ends[1:], strict=False)] or [ends[0] - t["on_train_epoch_start"][0]]
        last_images = n_train - batch * (len(ends) - 1)  # the last batch may be short
        images = batch * (len(timed) - 1) + (last_images if len(ends) > 1 else n_train)
        train_s = sum(timed) / images
        validations = [end - start for start, end in zip(t["on_val_start"], t["on_val_end"], strict=True)]
        eval_s = validations[0] / n_val
        epoch_s = t["on_fit_epoch_end"][0] - t["on_val_end"][0]  # metrics written, checkpoints saved
        final = (self.ended - t["on_fit_epoch_end"][0]) - (validations[1] if len(validations) > 1 else 0.0)
        setup_s = (t["on_train_start"][0] - self.started) + final
        return DetectionCost(train_s=train_s, eval_s=eval_s, epoch_s=epoch_s, setup_s=setup_s, batch=batch, **about)


def _mosaic_epochs(epochs: int, overrides: dict) -> int:
    """Epochs of the run that train on mosaics (ultralytics' defaults: mosaic 1.0, closed for the last 10)."""
    if not overrides.get("mosaic", 1.0):
        return 0
    return max(0, epochs - int(overrides.get("close_mosaic", 10)))


def split_images(data_dir: Path) -> tuple[list[Path], list[Path]]:
    """The dataset's training and validation images, spread over each split (the files are in name order)."""
    from ultralytics.data.utils import IMG_FORMATS

    doc = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8"))
    splits = []
    for split in ("train", "val"):
        folder = data_dir / doc.get(split, f"images/{split}")
        files = sorted(p for p in folder.glob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)
        if not files:
            raise ValueError(f"The dataset has no {split} images to time training on.")
        splits.append(_spread(files))
    return splits[0], splits[1]


def _spread(files: list[Path]) -> list[Path]:
    """Every file once, in an order whose every prefix samples the whole list."""
    step = max(1, math.isqrt(len(files)))
    return [f for start in range(step) for f in files[start::step]]


def _subset(data_dir: Path, out: Path, train: tuple, val: tuple) -> Path:
    """A YOLO-layout folder of links to some of the dataset's images and their labels, and its data.yaml."""
    doc = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8"))
    names = doc["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    for split, images in (("train", train), ("val", val)):
        for folder in ("images", "labels"):
            (out / folder / split).mkdir(parents=True, exist_ok=True)
        for image in map(Path, images):
            os.symlink(image, out / "images" / split / image.name)
            label = _label_of(image)
            if label.exists():
                os.symlink(label, out / "labels" / split / label.name)
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump({"path": str(out), "train": "images/train", "val": "images/val",
                                    "names": dict(enumerate(names))}, sort_keys=False), encoding="utf-8")
    return path


def _label_of(image: Path) -> Path:
    """Where ultralytics reads an image's boxes: the same path under labels/ instead of images/, as .txt."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([str(image)])[0])
