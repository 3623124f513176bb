"""The supervised training loop: seeded, resumable mid-epoch, cancellable from the `report` callback.

`report(line, progress=None)` is called once per batch with the overall progress (0-100) and now and then with a
text line. If it raises (that is how the portal cancels a job), the loop saves `last.pt` with the batches done so
far and re-raises; `train(..., resume=True)` later continues from exactly that batch.

out_dir layout:
    last.pt   everything needed to continue (model, optimizer, scheduler, scaler, history, best metric, early-stop
              counter, RNG states, and the unfinished epoch's position), rewritten after every epoch and on cancel
    best.pt   state dict of the epoch with the best validation top-1 so far
    model.pt  state dict of the final model (the best epoch's weights), written at the end
"""

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tango_common.hashing import sha256_file

from .data import AUGMENTATIONS, ImageFolderDataset, make_datasets
from .zoo import build_model, load_weights, model_profile

Report = Callable[..., None]
CHECKPOINT_FORMAT = 1
# Config fields that may change between a run and its resumption without changing what is trained.
RESUMABLE_CHANGES = {"device", "num_workers", "patience", "amp"}


@dataclass
class TrainConfig:
    model: str = "resnet18"
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"  # "sgd" | "adamw"
    lr: float = 0.05
    weight_decay: float = 5e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "cosine"  # "cosine" | "step" (x0.1 at 50% and 75% of training) | "none"
    warmup_epochs: int = 0  # linear warm-up before the schedule
    label_smoothing: float = 0.0
    seed: int = 0
    patience: int = 0  # stop after this many epochs without a better val top-1; 0 = never stop early
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    amp: bool = True  # float16 autocast + GradScaler, used only on CUDA
    num_workers: int = 0
    input_size: int = 32
    hflip: bool = False  # off by default: flipping changes digits and text
    augmentation: str = "light"  # "none" | "light" | "standard" | "strong" (see data.TrainTransform)
    precise_bn: bool = False  # recompute BatchNorm statistics over the training images before each evaluation
    # A state dict to start from (transfer learning). Set by the server only (an uploaded file of the team, a
    # search job's output), never from a user's options: training.engine.options declares what users may set.
    weights_path: str | None = None

    def validate(self) -> None:
        problems = []
        if self.optimizer not in ("sgd", "adamw"):
            problems.append(f"optimizer must be 'sgd' or 'adamw', not {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "none"):
            problems.append(f"schedule must be 'cosine', 'step' or 'none', not {self.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', not {self.device!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.input_size < 8:
            problems.append("epochs and batch_size must be >= 1, lr > 0 and input_size >= 8")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must be in [0, 1)")
        if self.augmentation not in AUGMENTATIONS:
            problems.append(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, not {self.augmentation!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training options: {', '.join(sorted(unknown))}")
        return cls(**values)


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    best_top1: float  # fractions in [0, 1] throughout
    final: dict  # val_loss, top1, top5 of the returned (best) weights
    per_class_accuracy: dict[str, float | None]  # None for a class with no val images
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class, in class_names order
    weights_path: str
    weights_sha256: str
    params: int
    flops: int  # 2 x macs, see zoo.model_profile
    macs: int
    device: str
    seconds: float  # wall time of this call (a resumed run counts only its own part)
    epochs_completed: int
    stopped_early: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _EpochStats:
    """Running sums of an epoch; part of the checkpoint so a resumed epoch reports the same numbers."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    batches_done: int = 0
    lr: float = 0.0


@dataclass
class _State:
    epoch: int = 0  # epochs completed
    history: list = field(default_factory=list)
    best_top1: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    partial: dict | None = None  # the unfinished epoch: its _EpochStats and RNG states at the cancel


def train(*, data_dir: Path, class_names: list[str], config: TrainConfig, out_dir: Path, report: Report,
          on_epoch: Callable[[dict], None] | None = None, resume: bool = True,
          model_factory: Callable[[int, int], nn.Module] | None = None,
          on_resume: Callable[[list[dict]], None] | None = None) -> TrainResult:
    """model_factory(num_classes, input_size) -> a fresh model to train instead of the zoo's `config.model` (an
    edited network); config.weights_path still warm-starts it where tensors fit.

    on_resume(history) is called when a checkpoint is resumed, before anything is reported, with the epochs it
    holds: a process killed after an epoch's checkpoint and before its line leaves a caller's log one epoch short,
    and only the caller knows what its log holds."""
    config.validate()
    return _Trainer(Path(data_dir), list(class_names), config, Path(out_dir), report, on_epoch,
                    model_factory).run(resume=resume, on_resume=on_resume)


class _Trainer:
    def __init__(self, data_dir, class_names, config, out_dir, report, on_epoch, model_factory=None):
        self.class_names, self.config, self.out_dir = class_names, config, out_dir
        self.report, self.on_epoch = report, on_epoch or (lambda record: None)
        self.started = time.monotonic()
        out_dir.mkdir(parents=True, exist_ok=True)
        self.device = _pick_device(config.device)
        self.amp = config.amp and self.device.type == "cuda"
        self.train_set, self.val_set = make_datasets(data_dir, class_names, input_size=config.input_size,
                                                     hflip=config.hflip, augmentation=config.augmentation)
        self.steps = _steps_per_epoch(len(self.train_set), config.batch_size)
        _seed_all(config.seed)  # the model's initial weights
        weights = Path(config.weights_path) if config.weights_path else None
        if model_factory is None:
            model = build_model(config.model, num_classes=len(class_names), input_size=config.input_size,
                                weights_path=weights, report=report)
        else:
            model = model_factory(len(class_names), config.input_size)
            if weights is not None:
                load_weights(model, weights, report=report)
        self.model = model.to(self.device)
        self.optimizer = _make_optimizer(self.model, config)
        self.scheduler = _make_scheduler(self.optimizer, config, self.steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.state = _State()

    # -- the run ----------------------------------------------------------------------------------------------

    def run(self, *, resume: bool, on_resume: Callable[[list[dict]], None] | None = None) -> TrainResult:
        if resume and self._resume():
            if on_resume is not None:
                on_resume(list(self.state.history))
        else:
            for stale in ("last.pt", "best.pt", "model.pt"):
                (self.out_dir / stale).unlink(missing_ok=True)
        self._report_start()
        while self.state.epoch < self.config.epochs and not self.state.stopped_early:
            self._run_epoch(self.state.epoch + 1)
        return self._finish()

    def _report_start(self) -> None:
        c = self.config
        params = sum(p.numel() for p in self.model.parameters())
        where = f"resuming after epoch {self.state.epoch}" if self.state.epoch or self.state.partial else "starting"
        self.report(f"{where}: {c.model} ({params / 1e6:.2f}M params) on {self.device.type}"
                    f"{' with AMP' if self.amp else ''}; {len(self.train_set)} train / {len(self.val_set)} val images,"
                    f" {len(self.class_names)} classes, {c.input_size}px, {c.epochs} epochs x {self.steps} batches")

    def _run_epoch(self, epoch: int) -> None:
        stats = self._train_epoch(epoch)
        if self.config.precise_bn:
            self._precise_bn(epoch)
        val = self._evaluate()
        record = {
            "epoch": epoch,
            "train_loss": stats.loss_sum / max(1, stats.seen),
            "train_top1": stats.correct / max(1, stats.seen),
            "val_loss": val["val_loss"], "top1": val["top1"], "top5": val["top5"],
            "lr": stats.lr,
            "images_per_s": stats.seen / max(stats.seconds, 1e-9),
            "seconds": stats.seconds,
        }
        improved = self._close_epoch(record)
        self.report(epoch_line(record, self.config.epochs, improved), progress=100 * epoch / self.config.epochs)
        if self.state.stopped_early:
            self.report(f"early stop: no better val top-1 for {self.config.patience} epochs "
                        f"(best {100 * self.state.best_top1:.1f}% at epoch {self.state.best_epoch})")
        self.on_epoch(record)

    def _close_epoch(self, record: dict) -> bool:
        """Book-keeping after an epoch, checkpoints written before anything can raise from report()."""
        state = self.state
        state.history.append(record)
        state.epoch, state.partial = record["epoch"], None
        improved = record["top1"] > state.best_top1
        if improved:
            state.best_top1, state.best_epoch, state.bad_epochs = record["top1"], record["epoch"], 0
            _atomic_save(_cpu_state_dict(self.model), self.out_dir / "best.pt")
        else:
            state.bad_epochs += 1
        state.stopped_early = bool(self.config.patience) and state.bad_epochs >= self.config.patience
        self._save_last()
        return improved

    # -- one epoch --------------------------------------------------------------------------------------------

    def _train_epoch(self, epoch: int) -> _EpochStats:
        seed = _epoch_seed(self.config.seed, epoch)
        stats = self._start_stats(seed)
        loader = self._train_loader(seed, first_batch=stats.batches_done)
        progress_line = _ProgressLine(self.report, epoch, self.config.epochs, self.steps)
        self.model.train()
        try:
            tick = time.monotonic()
            for images, labels in loader:
                self._train_step(images, labels, stats)
                now = time.monotonic()
                stats.seconds, tick = stats.seconds + now - tick, now
                overall = 100 * (epoch - 1 + stats.batches_done / self.steps) / self.config.epochs
                self.report(None, progress=overall)  # may raise: that is a cancel
                progress_line.maybe_emit(stats)
        except BaseException:
            # Only whole batches are in `stats`: resuming replays the rest of this epoch exactly.
            self.state.partial = {"stats": asdict(stats), "rng": _rng_states()}
            self._save_last()
            raise
        return stats

    def _start_stats(self, seed: int) -> _EpochStats:
        partial = self.state.partial
        if partial is None:
            _seed_all(seed)  # every epoch starts from its own seed, so a resumed run draws the same numbers
            return _EpochStats()
        _set_rng_states(partial["rng"])
        return _EpochStats(**partial["stats"])

    def _train_loader(self, seed: int, *, first_batch: int) -> DataLoader:
        n, size = len(self.train_set), self.config.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        order = order[: self.steps * size] if n >= size else order  # whole batches: BatchNorm dislikes a batch of 1
        return DataLoader(
            self.train_set, batch_size=size, sampler=order[first_batch * size:].tolist(),
            num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
            # Our own generator, or DataLoader draws a worker seed from the global RNG and shifts it.
            generator=torch.Generator().manual_seed(seed + first_batch),
        )

    def _train_step(self, images, labels, stats: _EpochStats) -> None:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            logits = self.model(images)
            loss = self.criterion(logits, labels)
        loss_value = loss.item()
        if not math.isfinite(loss_value):  # stop before a NaN reaches the weights and the checkpoint
            raise FloatingPointError(f"loss became {loss_value} at batch {stats.batches_done + 1}; "
                                     "try a lower learning rate")
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        stats.lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        stats.loss_sum += loss_value * len(labels)
        stats.correct += int((logits.argmax(1) == labels).sum())
        stats.seen += len(labels)
        stats.batches_done += 1

    # -- evaluation -------------------------------------------------------------------------------------------

    PRECISE_BN_IMAGES = 1024

    @torch.no_grad()
    def _precise_bn(self, epoch: int) -> None:
        """Recompute every BatchNorm's running mean and variance as the plain average over (up to 1,024) training
        images, as training sees them (augmented), with the weights as they are now. The running averages kept
        while training lag behind weights that still move fast and are noisy with small batches; on a small dataset
        they can put the validation accuracy far below what the weights can do. (Statistics of unaugmented images
        were tried and lost 10 points on textures: the network's features are tuned to the training distribution.)

        Its random draws come from their own seed and the global RNG is put back, so resuming stays exact."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        samples = self.train_set.samples  # in class order: take every k-th, so each class is in
        step = max(1, len(samples) // self.PRECISE_BN_IMAGES)
        data = ImageFolderDataset(samples[::step][: self.PRECISE_BN_IMAGES], self.train_set.transform)
        momenta = [m.momentum for m in norms]
        self.model.eval()  # dropout and the like stay off; only the norms collect statistics
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
            m.train()
        rng = _rng_states()
        try:
            _seed_all(_epoch_seed(self.config.seed, epoch) + 7919)
            loader = DataLoader(data, batch_size=max(self.config.batch_size, 2), num_workers=self.config.num_workers,
                                generator=torch.Generator().manual_seed(epoch))
            for images, _ in loader:
                if len(images) < 2:
                    continue
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    self.model(images.to(self.device, non_blocking=True))
        finally:
            _set_rng_states(rng)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.model.eval()

    @torch.no_grad()
    def _evaluate(self, *, with_predictions: bool = False) -> dict:
        self.model.eval()
        loader = DataLoader(self.val_set, batch_size=max(self.config.batch_size, 64),
                            num_workers=self.config.num_workers, generator=torch.Generator().manual_seed(0))
        loss_sum, top1, top5, targets, predictions = 0.0, 0, 0, [], []
        for images, labels in loader:
            images, labels = images.to(self.device), labels.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                logits = self.model(images).float()
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            top1 += int((logits.argmax(1) == labels).sum())
            if len(self.class_names) >= 5:
                top5 += int((logits.topk(5, dim=1).indices == labels[:, None]).any(1).sum())
            targets.append(labels.cpu())
            predictions.append(logits.argmax(1).cpu())
        n = len(self.val_set)
        result = {"val_loss": loss_sum / n, "top1": top1 / n, "top5": top5 / n if len(self.class_names) >= 5 else None}
        if with_predictions:
            result["targets"], result["predictions"] = torch.cat(targets), torch.cat(predictions)
        return result

    def _finish(self) -> TrainResult:
        best = self.out_dir / "best.pt"
        self.model.load_state_dict(torch.load(best, map_location=self.device, weights_only=True))
        final = self._evaluate(with_predictions=True)
        confusion = _confusion_matrix(final.pop("targets"), final.pop("predictions"), len(self.class_names))
        per_class = {name: (row[i] / sum(row) if sum(row) else None)
                     for i, (name, row) in enumerate(zip(self.class_names, confusion, strict=True))}
        weights = self.out_dir / "model.pt"
        _atomic_save(_cpu_state_dict(self.model), weights)
        profile = model_profile(self.model, self.config.input_size)
        self.report(f"done: best val top-1 {100 * self.state.best_top1:.1f}% at epoch {self.state.best_epoch}; "
                    f"weights {weights.name} ({profile['params'] / 1e6:.2f}M params, "
                    f"{profile['macs'] / 1e6:.1f}M MACs at {self.config.input_size}px)", progress=100.0)
        return TrainResult(
            history=self.state.history, best_epoch=self.state.best_epoch, best_top1=self.state.best_top1,
            final=final, per_class_accuracy=per_class, confusion_matrix=confusion, weights_path=str(weights),
            weights_sha256=sha256_file(weights), params=profile["params"], flops=profile["flops"], macs=profile["macs"],
            device=str(self.device), seconds=time.monotonic() - self.started, epochs_completed=self.state.epoch,
            stopped_early=self.state.stopped_early,
        )

    # -- checkpoints ------------------------------------------------------------------------------------------

    def _fingerprint(self) -> dict:
        """What must match for last.pt to continue this run rather than another one."""
        config = {k: v for k, v in self.config.as_dict().items() if k not in RESUMABLE_CHANGES}
        return {"config": config, "class_names": self.class_names, "train_images": len(self.train_set)}

    def _save_last(self) -> None:
        s = self.state
        _atomic_save({
            "format": CHECKPOINT_FORMAT, "fingerprint": self._fingerprint(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": s.epoch, "history": s.history, "best_top1": s.best_top1, "best_epoch": s.best_epoch,
            "bad_epochs": s.bad_epochs, "stopped_early": s.stopped_early, "partial": s.partial,
            "rng": _rng_states(),
        }, self.out_dir / "last.pt")

    def _resume(self) -> bool:
        path = self.out_dir / "last.pt"
        if not path.exists():
            return False
        try:
            checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as error:  # a torn or foreign file: say so and train from scratch
            self.report(f"ignoring {path.name}: unreadable ({type(error).__name__}); starting from scratch")
            return False
        if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("fingerprint") != self._fingerprint():
            self.report(f"ignoring {path.name}: it belongs to a different configuration or dataset; "
                        "starting from scratch")
            return False
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = _State(epoch=checkpoint["epoch"], history=checkpoint["history"],
                            best_top1=checkpoint["best_top1"], best_epoch=checkpoint["best_epoch"],
                            bad_epochs=checkpoint["bad_epochs"], partial=checkpoint["partial"],
                            stopped_early=checkpoint["stopped_early"] and bool(self.config.patience))
        return True


class _ProgressLine:
    """`epoch 3/10 [########------------]  40%  loss 0.412  312 img/s`, at most every 2 s and every 10%."""

    def __init__(self, report: Report, epoch: int, epochs: int, steps: int):
        self.report, self.epoch, self.epochs, self.steps = report, epoch, epochs, steps
        self.last_time, self.last_fraction = time.monotonic(), 0.0

    def maybe_emit(self, stats: _EpochStats) -> None:
        fraction = stats.batches_done / self.steps
        waited = time.monotonic() - self.last_time
        due = (fraction - self.last_fraction >= 0.1 and waited >= 2.0) or waited >= 30.0
        if fraction < 1.0 and not due:
            return
        self.last_time, self.last_fraction = time.monotonic(), fraction
        filled = round(20 * fraction)
        self.report(f"epoch {self.epoch}/{self.epochs} [{'#' * filled}{'-' * (20 - filled)}] {100 * fraction:3.0f}%"
                    f"  loss {stats.loss_sum / max(1, stats.seen):.3f}"
                    f"  {stats.seen / max(stats.seconds, 1e-9):.0f} img/s")


def epoch_line(record: dict, epochs: int, improved: bool) -> str:
    top5 = f"  top-5 {100 * record['top5']:.1f}%" if record["top5"] is not None else ""
    return (f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f}"
            f"  val loss {record['val_loss']:.4f}  top-1 {100 * record['top1']:.1f}%{top5}"
            f"  {record['images_per_s']:.0f} img/s  lr {record['lr']:.2e}  {record['seconds']:.1f}s"
            f"{'  (best)' if improved else ''}")


# -- helpers ----------------------------------------------------------------------------------------------------

def _pick_device(requested: str) -> torch.device:
    # torch.cuda is touched here, inside train(), never at import: CUDA does not survive a fork.
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise RuntimeError("device 'cuda' was requested but this worker has no usable CUDA GPU")
    return torch.device("cpu")


def _steps_per_epoch(n_images: int, batch_size: int) -> int:
    return max(1, n_images // batch_size)


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def lr_factor(step: int, *, schedule: str, total_steps: int, warmup_steps: int) -> float:
    """The learning-rate multiplier at an optimizer step (per step, so a mid-epoch resume lands on the same lr)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    done = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    if schedule == "step":
        return 0.1 ** sum(done >= milestone for milestone in (0.5, 0.75))
    return 1.0


def _make_scheduler(optimizer, config: TrainConfig, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    total, warmup = config.epochs * steps, min(config.warmup_epochs * steps, config.epochs * steps - 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, schedule=config.schedule, total_steps=total, warmup_steps=warmup)
    )


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**62


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too, lazily


def _rng_states() -> dict:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "python": random.getstate(),
        # As plain values and tensors so the checkpoint loads with weights_only=True.
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(_as_tuples(states["python"]))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def _as_tuples(value):
    # random.setstate wants tuples; a checkpoint round trip may hand back lists.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _cpu_state_dict(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _atomic_save(obj, path: Path) -> None:
    # Write then rename: a crash mid-save leaves the previous checkpoint, never half a file.
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, n: int) -> list[list[int]]:
    matrix = torch.zeros(n, n, dtype=torch.int64)
    matrix.index_put_((targets, predictions), torch.ones_like(targets), accumulate=True)
    return matrix.tolist()


