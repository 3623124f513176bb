"""Model recommendation. Django-free.

The TANGO paper's Table 1 gives a base model per catalog device: YOLOv7 variants for detection and ResNet depths
for classification, larger where the target has more compute. Devices added to the catalog later fall back on
their tier's row, so the reason always names the rule that chose the model.
"""

from dataclasses import asdict, dataclass

# device name -> (detection model, classification model), the paper's Table 1.
TABLE1: dict[str, tuple[str, str]] = {
    "Cloud": ("yolov7-d6", "resnet152"),
    "K8S_PC": ("yolov7-e6", "resnet101"),
    "K8S_Jetson_Nano": ("yolov7-e6", "resnet101"),
    "PC_Server": ("yolov7-w6", "resnet50"),
    "PC": ("yolov7-w6", "resnet50"),
    "Jetson_AGX_Orin": ("yolov7x", "resnet34"),
    "Jetson_AGX_Xavier": ("yolov7x", "resnet34"),
    "Jetson_Nano": ("yolov7x", "resnet34"),
    "Galaxy_S22": ("yolov7-supernet", "resnet18"),
    "Odroid_N2": ("yolov7-tiny", "resnet18"),
}

# tier -> (detection, classification) for devices the paper did not list.
TIER_DEFAULT: dict[str, tuple[str, str]] = {
    "cloud": ("yolov7-d6", "resnet152"),
    "k8s": ("yolov7-e6", "resnet101"),
    "pc": ("yolov7-w6", "resnet50"),
    "on_device": ("yolov7-tiny", "resnet18"),
}

TIER_LABELS = {"cloud": "Cloud", "k8s": "K8S", "pc": "PC", "on_device": "On-device"}

MODEL_LABELS = {
    "yolov7-d6": "YOLOv7-D6",
    "yolov7-e6": "YOLOv7-E6",
    "yolov7-w6": "YOLOv7-W6",
    "yolov7x": "YOLOv7-X",
    "yolov7-tiny": "YOLOv7-tiny",
    "yolov7-supernet": "YOLOv7 supernet (searched per device)",
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
}


@dataclass(frozen=True)
class Recommendation:
    model: str
    model_label: str
    family: str
    rule: str  # "table1" or "tier"
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def recommend(*, device_name: str, tier: str, task: str) -> Recommendation:
    column = 0 if task == "detection" else 1
    tier_label = TIER_LABELS.get(tier, tier)
    if device_name in TABLE1:
        model = TABLE1[device_name][column]
        rule = "table1"
        reason = f"{device_name} is {tier_label} tier → {MODEL_LABELS[model]} (TANGO paper, Table 1)."
    elif tier in TIER_DEFAULT:
        model = TIER_DEFAULT[tier][column]
        rule = "tier"
        reason = (
            f"{device_name} is not in the paper's Table 1; it is {tier_label} tier → {MODEL_LABELS[model]}, "
            f"the model Table 1 gives that tier."
        )
    else:
        raise ValueError(f"Unknown tier {tier!r} for device {device_name}.")
    family = "yolov7" if model.startswith("yolov7") else "resnet"
    return Recommendation(model=model, model_label=MODEL_LABELS[model], family=family, rule=rule, reason=reason)
