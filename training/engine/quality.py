"""The quality gate: a trained classifier that does no better than guessing is not a result to ship.

`verdict` compares the validation top-1 with chance (the share of the largest class in the validation split: always
answering that class scores it) and with a minimum the project may set. "Near chance" is judged with the size of
the validation split in mind: the accuracy must beat chance by two standard errors of a guesser's score on that
many images (on 84 images of 3 classes: 43.6% rather than 33.3%), so a lucky guesser rarely passes and a real
model on a handful of images is not failed for noise.

A failed verdict says why and what to try, from what the run shows (one class predicted for everything, a
validation loss that blew up, few images per class, images upscaled to the input size, few epochs).
"""

import math


def verdict(*, top1: float, confusion: list[list[int]], class_names: list[str], min_top1: float | None = None,
            history: list[dict] | None = None, n_train: int | None = None, input_size: int | None = None,
            image_side: int | None = None, epochs: int | None = None) -> dict:
    """{"passed", "top1", "chance", "required", "reason", "advice": [...]} for a finished run."""
    counts = [sum(row) for row in confusion]
    n_val = sum(counts)
    chance = max(counts) / n_val if n_val else 1 / max(1, len(class_names))
    margin = 2 * math.sqrt(chance * (1 - chance) / n_val) if n_val else 0.0
    required = min(0.999, chance + max(margin, 0.02))
    if min_top1 is not None and min_top1 > required:
        required = min_top1
    passed = top1 >= required - 1e-9
    result = {"passed": passed, "top1": top1, "chance": chance, "required": required, "n_val": n_val,
              "min_top1": min_top1, "reason": "", "advice": []}
    if passed:
        return result
    if min_top1 is not None and top1 >= chance + margin:
        result["reason"] = (f"validation top-1 {100 * top1:.1f}% is below the project's minimum of "
                            f"{100 * min_top1:.1f}%")
    else:
        result["reason"] = (f"validation top-1 {100 * top1:.1f}% is no better than chance ({100 * chance:.1f}%: "
                            f"always answering the largest class); a useful model needs at least "
                            f"{100 * required:.1f}% on these {n_val} images")
    result["advice"] = _advice(confusion, class_names, history or [], n_train, input_size, image_side, epochs)
    return result


def _advice(confusion, class_names, history, n_train, input_size, image_side, epochs) -> list[str]:
    tips = []
    predicted = [sum(row[j] for row in confusion) for j in range(len(class_names))]
    if sum(predicted) and max(predicted) == sum(predicted):
        one = class_names[predicted.index(max(predicted))]
        tips.append(f"Every validation image was predicted as '{one}': the training collapsed. Lower the learning "
                    "rate (e.g. a tenth of it) or keep the default warm-up.")
    losses = [r.get("val_loss") for r in history if r.get("val_loss") is not None]
    if losses and (not all(math.isfinite(v) for v in losses) or max(losses) > 100):
        tips.append("The validation loss blew up: lower the learning rate, or leave it empty to use the default.")
    if image_side and input_size and input_size > 1.5 * image_side:
        tips.append(f"The images are about {image_side} px but the project trains at {input_size} px: set the input "
                    f"size to {image_side} (upscaling adds no detail and slows training).")
    if n_train is not None and class_names and n_train / len(class_names) < 100:
        tips.append(f"{n_train // len(class_names)} training images per class is few: add images, or use stronger "
                    "augmentation.")
    if epochs is not None and epochs < 30:
        tips.append(f"{epochs} epochs is short for training from scratch: leave epochs empty (chosen from the "
                    "dataset's size) or raise it.")
    tips.append("Check the labels: look at a few images of each class on the dataset page.")
    tips.append("Upload pretrained weights for this model on the project page to start from them.")
    return tips


# A detector that finds (almost) nothing: below this mAP50 on the validation split it is not a result to ship.
# Guessing boxes scores about 0 here, so the floor is set where a detector has started to find objects at all.
DETECTION_FLOOR = 0.05
FEW_DETECTION_IMAGES = 500  # under this many training images, a detector from scratch rarely learns; start from
MIN_UPDATES = 200  # weights. 40 photos, 50 epochs from scratch: 25 updates gave mAP50 0.017, 200 gave 0.968.
NOMINAL_BATCH = 64  # ultralytics' nbs: it accumulates this many images' gradients into each weight update


def weight_updates(*, n_train: int, epochs: int, batch: int, nbs: int = NOMINAL_BATCH) -> int:
    """How many times ultralytics updates the weights in a run: one update per round(nbs / batch) batches."""
    batches = math.ceil(n_train / batch) * epochs
    return batches // max(1, round(nbs / batch))


def detection_verdict(*, map50: float, min_map50: float | None = None, n_train: int | None = None,
                      epochs: int | None = None, input_size: int | None = None, batch: int | None = None,
                      nbs: int | None = None, model: str | None = None, pretrained: bool = False) -> dict:
    """The detection gate: mAP50 against a floor (a detector that finds nothing) or the project's minimum. A failed
    verdict's advice is what to change, the change most likely to help first: for a small dataset, pretrained
    weights, then enough weight updates (few images at the default batch and nbs gave a run of a few dozen), a
    smaller model, more images."""
    required = max(DETECTION_FLOOR, min_map50 or 0.0)
    result = {"passed": map50 >= required - 1e-9, "map50": map50, "required": required, "min_top1": min_map50,
              "reason": "", "advice": []}
    if result["passed"]:
        return result
    result["reason"] = (f"validation mAP50 {map50:.3f} is below {required:.2f}"
                        + (" (the project's minimum)" if min_map50 and min_map50 >= DETECTION_FLOOR else
                           ": the detector finds almost none of the objects"))
    result["advice"] = _detection_advice(n_train=n_train, epochs=epochs, input_size=input_size, batch=batch,
                                         nbs=nbs or NOMINAL_BATCH, model=model, pretrained=pretrained)
    return result


def _detection_advice(*, n_train, epochs, input_size, batch, nbs, model, pretrained) -> list[str]:
    tips = []
    few = n_train is not None and n_train < FEW_DETECTION_IMAGES
    if not pretrained:
        tips.append("Start from pretrained weights: upload a checkpoint of this model (trained on a large set such "
                    "as COCO) on the project page." + (f" From scratch, {n_train} images are too few for a detector "
                                                       "to learn; this is the change that helps most." if few else ""))
    if n_train and epochs and batch:
        updates = weight_updates(n_train=n_train, epochs=epochs, batch=batch, nbs=nbs)
        if updates < MIN_UPDATES:
            small = max(2, min(batch, n_train // 4))  # four batches an epoch, as the train stage's default
            more = min(500, math.ceil(MIN_UPDATES / math.ceil(n_train / small)))
            # Only what differs from the run: a small set already trains at batch = nbs, and asking for those
            # again read as if they were the cause.
            asked = (("batch size", small, batch), ("nominal batch size (nbs)", small, nbs), ("epochs", more, None))
            changes = [f"the {name} to {'about ' * (was is None)}{value}" for name, value, was in asked if value != was]
            tips.append(f"The run made only {updates} weight updates: {epochs} epochs of {math.ceil(n_train / batch)} "
                        f"batches of {batch}, and one update per {nbs} images (ultralytics' nominal batch size, nbs)."
                        f" In the Training options set {_and(changes)}: about {more * math.ceil(n_train / small)} "
                        "updates.")
    elif epochs is not None and epochs < 50:
        tips.append(f"{epochs} epochs is short for a detector trained from scratch: raise it.")
    if few and model:
        from .yolo.zoo import FAMILIES, LABELS, family_of

        smallest = FAMILIES[family_of(model)][0]
        if model != smallest:
            tips.append(f"Pick a smaller model: {LABELS[smallest]} rather than {LABELS[model]} learns from few "
                        "images sooner and trains faster (the recommend card's Pick, or the project's settings).")
    if n_train is not None and n_train < 200:
        tips.append(f"{n_train} training images is few for detection: add images (a few hundred, every object "
                    "boxed, is a usual start).")
    if input_size is not None and input_size < 320:
        tips.append(f"At {input_size} px small objects vanish: raise the input size if the device's budget allows.")
    tips.append("Check the boxes: open a few label files against their images on the dataset page.")
    return tips


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def summary(result: dict) -> str:
    """The failed verdict in one paragraph: the job's error."""
    advice = " ".join(f"({i}) {tip}" for i, tip in enumerate(result["advice"], start=1))
    return f"Quality gate: {result['reason']}. The model was not passed on to conversion. What to try: {advice}"
