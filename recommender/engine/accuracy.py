"""Expected accuracy of a candidate: a published prior per family and complexity, replaced by the team's own
measured results as they accumulate. Django-free.

Priors are the published figures the models are known by: ImageNet top-1 of torchvision's weights for the
classifiers, COCO AP (val) of the YOLOv7 paper and Ultralytics' YOLO11 figures for detection. They rank
candidates; they are not what the project's dataset will give. Models with no published figure (our narrow
densenet_tiny and vgg_tiny, the paper's ResNet-203) take their family's trend in log FLOPs, kept within a few
points of the family's published range, and say so. (FLOPs, not parameters: VGG's parameters sit in its classifier
head and hardly vary by depth.)

Once the team has measured any candidate of the task (a benchmark with accuracy), measured candidates use their
own mean, and the others their prior shifted by the mean gap between measured results and priors: the ranking
moves onto the team's scale while keeping the families' order.
"""

import math
from dataclasses import dataclass

# (value %, source)
PUBLISHED: dict[str, tuple[float, str]] = {
    "resnet18": (69.76, "ImageNet top-1, torchvision"),
    "resnet34": (73.31, "ImageNet top-1, torchvision"),
    "resnet50": (76.13, "ImageNet top-1, torchvision"),
    "resnet101": (77.37, "ImageNet top-1, torchvision"),
    "resnet152": (78.31, "ImageNet top-1, torchvision"),
    "densenet121": (74.43, "ImageNet top-1, torchvision"),
    "densenet169": (75.60, "ImageNet top-1, torchvision"),
    "densenet201": (76.90, "ImageNet top-1, torchvision"),
    "densenet161": (77.14, "ImageNet top-1, torchvision"),
    "vgg11": (70.37, "ImageNet top-1, torchvision (vgg11_bn)"),
    "vgg13": (71.59, "ImageNet top-1, torchvision (vgg13_bn)"),
    "vgg16": (73.36, "ImageNet top-1, torchvision (vgg16_bn)"),
    "vgg19": (74.22, "ImageNet top-1, torchvision (vgg19_bn)"),
    "yolov7-tiny": (38.7, "COCO AP val, YOLOv7 paper"),
    "yolov7": (51.4, "COCO AP val, YOLOv7 paper"),
    "yolov7x": (53.1, "COCO AP val, YOLOv7 paper"),
    "yolov7-w6": (54.9, "COCO AP val, YOLOv7 paper (1280 px)"),
    "yolov7-e6": (56.0, "COCO AP val, YOLOv7 paper (1280 px)"),
    "yolov7-d6": (56.6, "COCO AP val, YOLOv7 paper (1280 px)"),
    "yolov7-e6e": (56.8, "COCO AP val, YOLOv7 paper (1280 px)"),
    "yolo11n": (39.5, "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)"),
    "yolo11s": (47.0, "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)"),
    "yolo11m": (51.5, "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)"),
    "yolo11l": (53.4, "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)"),
    "yolo11x": (54.7, "COCO mAP50-95 val, Ultralytics YOLO11 (640 px)"),
}


# What the expected accuracy measures, per task: the prior's published figure and the team's measured results are
# both in this metric (deployment's benchmark measures top-1 for classifiers and mAP50-95 for detectors).
METRICS = {"classification": "top-1", "detection": "mAP50-95"}


@dataclass(frozen=True)
class Expected:
    value: float  # percent
    source: str
    measured_runs: int = 0
    metric: str = METRICS["classification"]


# How far a trend may reach beyond the family's published figures, below its smallest and above its largest.
TREND_BELOW, TREND_ABOVE = 15.0, 1.5


def priors(candidates: dict[str, tuple[str, float]], *, task: str = "classification") -> dict[str, Expected]:
    """Prior per model key. candidates: key -> (family, FLOPs). Unpublished ones follow their family's trend."""
    metric = METRICS[task]
    out = {key: Expected(*PUBLISHED[key], metric=metric) for key in candidates if key in PUBLISHED}
    for key, (family, flops) in candidates.items():
        if key not in out:
            out[key] = _trend(family, flops, candidates, metric)
    return out


def _trend(family: str, flops: float, candidates: dict[str, tuple[str, float]], metric: str) -> Expected:
    known = [(math.log(f), PUBLISHED[k][0]) for k, (fam, f) in candidates.items() if fam == family and k in PUBLISHED]
    if len(known) < 2:
        return Expected(0.0, "no published figure and no family trend", metric=metric)
    xs, ys = zip(*known, strict=True)
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in known) / max(sum((x - mean_x) ** 2 for x in xs), 1e-9)
    value = min(max(mean_y + slope * (math.log(flops) - mean_x), min(ys) - TREND_BELOW), max(ys) + TREND_ABOVE)
    return Expected(round(value, 2), f"no published figure: {family} trend in log FLOPs", metric=metric)


def expected(priors_by_key: dict[str, Expected], measured: dict[str, list[float]]) -> dict[str, Expected]:
    """Replace priors by the team's measured results (percent), shifting unmeasured ones onto the same scale."""
    gaps = [sum(v) / len(v) - priors_by_key[k].value for k, v in measured.items() if v and k in priors_by_key]
    if not gaps:
        return dict(priors_by_key)
    shift = sum(gaps) / len(gaps)
    out = {}
    for key, prior in priors_by_key.items():
        if runs := measured.get(key):
            out[key] = Expected(sum(runs) / len(runs), f"measured by the team ({len(runs)} run"
                                f"{'s' if len(runs) != 1 else ''})", len(runs), prior.metric)
        else:
            out[key] = Expected(prior.value + shift, f"{prior.source}, shifted {shift:+.1f} pts to the team's "
                                f"measured results", metric=prior.metric)
    return out
