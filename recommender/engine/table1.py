"""The TANGO paper's Table 1 as the "paper rules" strategy. Django-free.

The paper's models live on each catalog device (two fields an admin can edit, seeded for the paper's ten devices),
so renaming a device keeps its row. A device without them (one the paper did not list) takes the models of the
paper device of its own tier whose compute is nearest (log scale), and the reason says so.
"""

import math
from dataclasses import asdict, dataclass

# Labels exactly as the paper prints them; the zoo key each one builds.
PAPER_DETECTION_MODELS: dict[str, str] = {
    "YOLOv7-tiny": "yolov7-tiny",
    "YOLOv7": "yolov7",
    "YOLOv7-X": "yolov7x",
    "YOLOv7-W6": "yolov7-w6",
    "YOLOv7-E6": "yolov7-e6",
    "YOLOv7-D6": "yolov7-d6",
    "YOLOv7-E6E": "yolov7-e6e",
}
PAPER_CLASSIFICATION_MODELS: dict[str, str] = {
    "ResNet-18": "resnet18",
    "ResNet-34": "resnet34",
    "ResNet-50": "resnet50",
    "ResNet-101": "resnet101",
    "ResNet-152": "resnet152",
    "ResNet-203": "resnet203",
}
MODEL_LABELS = {key: label for label, key in {**PAPER_DETECTION_MODELS, **PAPER_CLASSIFICATION_MODELS}.items()}

# Said wherever the portal shows ResNet-203 (the zoo builds it: training.engine.zoo.RESNET203_BLOCKS).
RESNET203_NOTE = ("ResNet-203 as the TANGO paper prints it: no standard ResNet has 203 layers, so it is built "
                  "literally, a bottleneck ResNet with 67 blocks [3, 24, 37, 3]: 3 × 67 + 2 = 203 weighted layers "
                  "(He et al.'s ResNet-200 is [3, 24, 36, 3]).")

TIER_LABELS = {"cloud": "Cloud", "k8s": "K8S", "pc": "PC", "on_device": "On-device"}

# The table itself, for the data migration and the tests: device -> (tier, detection, classification).
TABLE1: dict[str, tuple[str, str, str]] = {
    "Cloud": ("cloud", "YOLOv7-E6E", "ResNet-203"),
    "K8S_PC": ("k8s", "YOLOv7-W6", "ResNet-152"),
    "K8S_Jetson_Nano": ("k8s", "YOLOv7-tiny", "ResNet-34"),
    "PC_Server": ("pc", "YOLOv7-E6", "ResNet-152"),
    "PC": ("pc", "YOLOv7-W6", "ResNet-152"),
    "Jetson_AGX_Orin": ("on_device", "YOLOv7-W6", "ResNet-101"),
    "Jetson_AGX_Xavier": ("on_device", "YOLOv7-X", "ResNet-50"),
    "Jetson_Nano": ("on_device", "YOLOv7-tiny", "ResNet-34"),
    "Galaxy_S22": ("on_device", "YOLOv7-tiny", "ResNet-34"),
    "Odroid_N2": ("on_device", "YOLOv7-tiny", "ResNet-34"),
}


@dataclass(frozen=True)
class DeviceRow:
    """What the rule reads from a catalog device."""

    name: str
    tier: str
    peak_fp32_gflops: float
    paper_detection_model: str = ""
    paper_classification_model: str = ""

    def paper_label(self, task: str) -> str:
        return self.paper_detection_model if task == "detection" else self.paper_classification_model


@dataclass(frozen=True)
class PaperChoice:
    model: str  # zoo key
    model_label: str  # as the paper prints it
    family: str
    rule: str  # "table1" (the device's own row) or "nearest" (borrowed from a paper device of the same tier)
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def paper_choice(*, device: DeviceRow, task: str, paper_devices: list[DeviceRow]) -> PaperChoice:
    """The paper's model for this device and task, with the reason a user reads."""
    tier_label = TIER_LABELS.get(device.tier, device.tier)
    if label := device.paper_label(task):
        return _choice(label, task, "table1", f"{device.name} is {tier_label} tier → {label} (TANGO paper, Table 1).")
    donor = nearest_paper_device(device, task, paper_devices)
    if donor is None:
        raise ValueError(f"No device of the {tier_label} tier has a paper model for {task}.")
    label = donor.paper_label(task)
    reason = (f"{device.name} is not in the paper's Table 1; it is {tier_label} tier and nearest in compute to "
              f"{donor.name} ({device.peak_fp32_gflops:,.0f} vs {donor.peak_fp32_gflops:,.0f} GFLOPS FP32) → "
              f"{label}, the model Table 1 gives {donor.name}.")
    return _choice(label, task, "nearest", reason)


def nearest_paper_device(device: DeviceRow, task: str, paper_devices: list[DeviceRow]) -> DeviceRow | None:
    """The paper device of the same tier (any tier if none) whose peak FP32 compute is nearest on a log scale."""
    rows = [d for d in paper_devices if d.paper_label(task) and d.name != device.name]
    same_tier = [d for d in rows if d.tier == device.tier] or rows
    if not same_tier:
        return None
    here = math.log(max(device.peak_fp32_gflops, 1e-3))
    return min(same_tier, key=lambda d: (abs(math.log(max(d.peak_fp32_gflops, 1e-3)) - here), d.name))


def _choice(label: str, task: str, rule: str, reason: str) -> PaperChoice:
    models = PAPER_DETECTION_MODELS if task == "detection" else PAPER_CLASSIFICATION_MODELS
    if label not in models:
        raise ValueError(f"{label!r} is not a paper model for {task}; known: {', '.join(models)}.")
    family = "yolov7" if task == "detection" else "resnet"
    return PaperChoice(model=models[label], model_label=label, family=family, rule=rule, reason=reason)
