"""Training defaults that train a useful model from scratch when the user sets no option.

A few hundred images of 3 classes, a network with millions of parameters and no pretrained weights: the old fixed
recipe (SGD at lr 0.05 with no warm-up, mild augmentation, 224 px for 64 px photos, BatchNorm statistics from the
last training batches) diverged or collapsed to one class. The defaults here are derived from the dataset:

- the number of epochs and the batch size from the number of training images (enough optimizer steps to converge:
  small datasets get more epochs, 15 to 50; see MAX_EPOCHS);
- a linear warm-up, then a cosine decay to zero, with the learning rate scaled to the batch size;
- label smoothing and weight decay, and augmentation that fits the images: random crops, flips and colour jitter
  for photos, crops and small shifts without flips for small grayscale images (digits, text);
- BatchNorm statistics: the running averages, which measured best. "Precise BN" (statistics recomputed before
  each evaluation, the `precise_bn` option) is there, computed over augmented training images: recomputed over
  unaugmented ones it cost 10 points on textures (82% against 92%, H200 sweep, 2 seeds), because the network's
  features are tuned to what it trains on; the augmented variant was not measured on a GPU yet, so it stays opt-in;
- an input size from the images' own size (`suggested_input_size`, in tango_common.images for the wizard too);
- a model size the data can bear (`bearable_model`): with few images, a smaller candidate of those the
  recommender found to fit.

Whatever the user sets wins; `explain` says in one line what was chosen and why.
"""

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tango_common.images import IMAGE_SUFFIXES, suggested_input_size

from .data import list_images

SAMPLE_IMAGES = 64  # images opened to learn their size and colour
# The most epochs a run gets by default. 1,500 steps asked 100 of a 72-image set (4 batches an epoch), over an hour
# on a 2-core server at 224 px. bench/train_defaults.py --epochs (ResNet-18 from scratch, 64 px photos and objects
# made from scikit-image's images, 3 classes): 72 training images, 2 seeds, val top-1 at 15/30/50/100 epochs:
# photos 96.9/97.9/100/100%, objects 91.7/90.6/91.7/91.7%; 216 training images, 1 seed, at 50/100: photos
# 100/98.8%, objects 96.4/98.8%. Half the time for what the noise of a few validation images can hide.
MAX_EPOCHS = 50


@dataclass(frozen=True)
class DataFacts:
    """What the defaults depend on, read from the dataset folder."""

    n_train: int
    n_classes: int
    side: int  # the median shorter side of the images, in pixels
    grayscale: bool  # every sampled image is single-channel (digits, scans, textures)
    n_val: int = 0  # validation images: evaluated every epoch, so part of a run's duration


def data_facts(data_dir: Path, class_names: list[str]) -> DataFacts:
    """Count the training and validation images and sample their size and mode."""
    samples = list_images(Path(data_dir) / "train", class_names)
    step = max(1, len(samples) // SAMPLE_IMAGES)
    sides, modes = [], set()
    for path, _ in samples[::step][:SAMPLE_IMAGES]:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        with Image.open(path) as image:
            sides.append(min(image.size))
            modes.add(image.mode)
    sides.sort()
    return DataFacts(n_train=len(samples), n_classes=len(class_names), side=sides[len(sides) // 2] if sides else 0,
                     grayscale=bool(modes) and modes <= {"L", "1", "I", "I;16", "LA"},
                     n_val=len(list_images(Path(data_dir) / "val", class_names)))


def default_options(facts: DataFacts) -> dict:
    """TrainConfig values for a dataset: what a run uses for every option the user left out."""
    n = max(1, facts.n_train)
    batch_size = 32 if n < 2000 else 64 if n < 20000 else 128
    batch_size = max(8, min(batch_size, _power_of_two_below(n // 4)))
    steps_per_epoch = max(1, n // batch_size)
    # About 1,500 optimizer steps on a small dataset, within 15 to MAX_EPOCHS epochs; a large one gets 15 passes.
    epochs = int(min(MAX_EPOCHS, max(15, round(1500 / steps_per_epoch))))
    small_gray = facts.grayscale and facts.side <= 32  # digits, letters: a mirror image is another class
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": "sgd",
        "momentum": 0.9,
        "lr": round(0.1 * batch_size / 128, 6),  # 0.025 at batch 32: the linear scaling rule from 0.1 at 128
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_epochs": max(1, min(5, epochs // 10)),
        "label_smoothing": 0.1,
        "augmentation": "light" if small_gray else "standard",
        "hflip": not small_gray,
        "precise_bn": False,  # see the module's docstring
        "patience": 0,  # a short cosine run reaches its best near the end; stopping early cuts the decay off
    }


def _power_of_two_below(n: int) -> int:
    power = 1
    while power * 2 <= n:
        power *= 2
    return power


def resolve(user: dict, facts: DataFacts) -> tuple[dict, list[str]]:
    """The user's options over the derived defaults; and the names of the options that were derived."""
    defaults = default_options(facts)
    chosen = {k: v for k, v in user.items() if v is not None}
    if "batch_size" in chosen and "lr" not in chosen and chosen.get("optimizer", "sgd") == "sgd":
        defaults["lr"] = round(0.1 * chosen["batch_size"] / 128, 6)  # keep the learning rate in step
    if chosen.get("optimizer") == "adamw" and "lr" not in chosen:
        defaults["lr"], defaults["weight_decay"] = 1e-3, 0.05
    if "epochs" in chosen:  # a warm-up in proportion to the epochs the user asked for
        defaults["warmup_epochs"] = min(5, chosen["epochs"] // 10)
    derived = sorted(k for k in defaults if k not in chosen)
    return {**defaults, **chosen}, derived


def explain(values: dict, derived: list[str], facts: DataFacts) -> str:
    """One log line: what the run uses and which of it was derived from the dataset."""
    picked = ", ".join(f"{k} {values[k]}" for k in derived if k in ("epochs", "batch_size", "lr", "augmentation",
                                                                   "warmup_epochs", "label_smoothing", "hflip"))
    kind = "small grayscale images" if facts.grayscale and facts.side <= 32 else "photos"
    return (f"Defaults for {facts.n_train} training images of {facts.n_classes} classes ({kind}, about "
            f"{facts.side} px): {picked or 'none needed, every option is set'}.")


# -- model size -------------------------------------------------------------------------------------------------

# Parameters a from-scratch model may have for a dataset of n training images: few images cannot fit (or
# regularise) a very deep network; this keeps ResNet-18-sized models for a few thousand images.
def params_cap(n_train: int) -> float:
    if n_train < 5000:
        return 12e6
    if n_train < 50000:
        return 30e6
    return float("inf")


def bearable_model(items: list[dict], *, recommended: str | None, n_train: int) -> tuple[str | None, str]:
    """Among the ranked candidates (the recommender's items: key, params, accuracy, fits_latency, fits_memory),
    the model to train from scratch on n_train images, and why. The recommended one when the data can bear it;
    else the most accurate fitting candidate under the cap; else the smallest fitting one."""
    fitting = [i for i in items if i.get("fits_latency", True) and i.get("fits_memory", True)]
    by_key = {i["key"]: i for i in items}
    cap = params_cap(n_train)
    if recommended is None or recommended not in by_key or by_key[recommended]["params"] <= cap or not fitting:
        return recommended, ""
    under = [i for i in fitting if i["params"] <= cap]
    pick = (max(under, key=lambda i: (i.get("accuracy", 0), -i["params"])) if under
            else min(fitting, key=lambda i: i["params"]))
    if pick["key"] == recommended:
        return recommended, ""
    return pick["key"], (f"{by_key[recommended].get('label', recommended)} has "
                         f"{by_key[recommended]['params'] / 1e6:.1f}M parameters, more than {n_train} training "
                         f"images can train from scratch (about {cap / 1e6:.0f}M at most); training "
                         f"{pick.get('label', pick['key'])} ({pick['params'] / 1e6:.1f}M), which also fits the "
                         f"device. Pick a model on the project page to override.")


__all__ = ["DataFacts", "bearable_model", "data_facts", "default_options", "explain", "resolve",
           "suggested_input_size"]
