"""How long a training run will take on the machine this runs on, measured rather than guessed. Django-free.

A few real optimizer steps of the model at its input size (forward, loss, backward, SGD update), a forward pass
in evaluation mode, and the decoding and augmentation of some of the dataset's own images are timed. A run's
duration is then epochs x (training images x (step + loading) + validation images x (forward + loading)). The
worker that times is the one that trains (same threads, same device), so the figure is this server's.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .data import make_datasets
from .zoo import build_model

TIMED_STEPS = 2  # after one untimed warm-up step (allocations, kernel selection)
# Images per timed step: the batch small datasets train at (training.engine.defaults). At 8, DenseNet-121's cost per
# image read 28% above its real run at 16 (bench/train_estimate.py); at 16 every case there was within 16%.
TIMING_BATCH = 16
LOADED_IMAGES = 16  # dataset images decoded and augmented to time loading


@dataclass(frozen=True)
class StepCost:
    """Seconds per image, measured."""

    train_s: float  # one optimizer step's share: forward, backward, update
    eval_s: float  # forward only, no gradients
    load_s: float  # reading, decoding and augmenting one image of the dataset
    model: str
    input_size: int
    device: str
    threads: int
    network: str = ""  # the edited network timed instead of the zoo model `model` (its label); "" for the zoo's
    params: int = 0  # parameters of the network timed (0: a record from before it was kept)

    def run_seconds(self, *, epochs: int, n_train: int, n_val: int) -> float:
        """One run: every epoch trains on the training images and evaluates the validation ones; the best weights
        are evaluated once more at the end."""
        per_epoch = n_train * (self.train_s + self.load_s) + n_val * (self.eval_s + self.load_s)
        return epochs * per_epoch + n_val * (self.eval_s + self.load_s)

    def as_dict(self) -> dict:
        return asdict(self)


def time_training(model_name: str, *, data_dir: Path, class_names: list[str], input_size: int,
                  device: str = "auto", build: Callable | None = None, network: str = "") -> StepCost:
    """Raises ValueError (training.engine.data) where the dataset has no training images to load. build(num_classes,
    input_size) -> a fresh nn.Module: the network that will train when it is not the zoo's `model_name` (one
    edited in the visualiser, named `network`); it is timed each time (its edits are not part of a cache key)."""
    from .train import _pick_device

    load_s = _load_seconds(data_dir, class_names, input_size)  # first: a dataset that cannot load fails at once
    where = _pick_device(device)
    threads = torch.get_num_threads()
    if build is None:
        train_s, eval_s, params = _step_seconds(model_name, len(class_names), input_size, str(where), threads)
    else:
        train_s, eval_s, params = _time_steps(build(len(class_names), input_size), len(class_names), input_size,
                                              where)
    return StepCost(train_s=train_s, eval_s=eval_s, load_s=load_s, model=model_name, input_size=input_size,
                    device=where.type, threads=threads, network=network, params=params)


# A model's steps cost the same whatever the dataset (only the number of classes changes its shape), so a worker
# process times each model, size and thread count once (a few seconds for the larger ones; every recommend job would
# pay them again otherwise); loading is timed on each dataset's own images.
@functools.lru_cache(maxsize=64)
def _step_seconds(model_name: str, num_classes: int, input_size: int, where: str,
                  threads: int) -> tuple[float, float, int]:
    model = build_model(model_name, num_classes=num_classes, input_size=input_size)
    return _time_steps(model, num_classes, input_size, torch.device(where))


def _time_steps(model: nn.Module, num_classes: int, input_size: int, where: torch.device) -> tuple[float, float, int]:
    """(seconds per image of a training step, of an evaluation forward pass; the model's parameter count)."""
    model = model.to(where)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    images = torch.randn(TIMING_BATCH, 3, input_size, input_size, device=where)
    labels = torch.randint(num_classes, (TIMING_BATCH,), device=where)

    def step():
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images), labels).backward()
        optimizer.step()

    model.train()
    train_s = _per_image(step, where)
    model.eval()
    with torch.no_grad():
        eval_s = _per_image(lambda: model(images), where)
    return train_s, eval_s, sum(p.numel() for p in model.parameters())


def _per_image(run, where: torch.device) -> float:
    run()  # warm-up, untimed
    _sync(where)
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        run()
    _sync(where)
    return (time.perf_counter() - started) / (TIMED_STEPS * TIMING_BATCH)


def _sync(where: torch.device) -> None:
    if where.type == "cuda":
        torch.cuda.synchronize()


def _load_seconds(data_dir: Path, class_names: list[str], input_size: int) -> float:
    train_set, _ = make_datasets(data_dir, class_names, input_size=input_size, hflip=True, augmentation="standard")
    count = min(LOADED_IMAGES, len(train_set))
    if not count:
        return 0.0
    step = max(1, len(train_set) // count)  # spread over the classes (the samples are in class order)
    started = time.perf_counter()
    for index in range(0, step * count, step):
        train_set[index]
    return (time.perf_counter() - started) / count
