"""The detection zoo: the paper's YOLOv7 family and ultralytics' YOLO11 scales, built from .yaml only.

YOLO11 is the current family here (not YOLO26): its decoded output is the classic (4 + classes) x anchors tensor
followed by NMS, which is what the portal's bundle, its ONNX parity check and the RKNN toolchain (2.3.x) take;
YOLO26 is end-to-end (NMS-free, no DFL) by design, a different deployment path. YOLO11 trains with the same
box / cls / DFL losses as the YOLOv7 models here, so the two families read alike on the training page.

Django-free; ultralytics is imported lazily so listing the zoo costs nothing.
"""

import copy
from pathlib import Path

from . import yolov7

YOLO11_SCALES = ("n", "s", "m", "l", "x")
FAMILIES: dict[str, list[str]] = {
    "yolov7": list(yolov7.BUILDERS),
    "yolo11": [f"yolo11{s}" for s in YOLO11_SCALES],
}
LABELS = {**yolov7.LABELS, **{f"yolo11{s}": f"YOLO11{s}" for s in YOLO11_SCALES}}


def detection_model_names() -> list[str]:
    return [name for names in FAMILIES.values() for name in names]


def family_of(name: str) -> str:
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise ValueError(f"Unknown detection model {name!r}; known: {', '.join(detection_model_names())}.")


def model_yaml(name: str) -> str:
    """What ultralytics is given: our YOLOv7 file's path, or the name ultralytics resolves to its bundled
    yolo11.yaml at that scale (a .yaml name never triggers a download; a .pt name would)."""
    if family_of(name) == "yolov7":
        return str(yolov7.yaml_path(name))
    return f"{name}.yaml"


def detection_models() -> list[dict]:
    """Every detection model: name, label, family, complexity level (1 = smallest) and its model yaml."""
    rows = []
    for family, names in FAMILIES.items():
        for level, name in enumerate(names, start=1):
            row = {"name": name, "label": LABELS[name], "family": family, "level": level, "yaml": model_yaml(name)}
            if family == "yolov7":
                params, gflops, ap, size = yolov7.PUBLISHED[name]
                row["published"] = {"params": params, "gflops": gflops, "ap": ap, "input_size": size}
            rows.append(row)
    return rows


def model_dict(name: str, nc: int) -> dict:
    """The parsed model yaml as a dict with nc set (ultralytics' own loader, so YOLO11's scale is applied)."""
    from ultralytics.nn.tasks import yaml_model_load

    spec = copy.deepcopy(yaml_model_load(model_yaml(name)))
    spec["nc"] = nc
    return spec


def min_input_size(name: str) -> int:
    """The smallest input the detector takes: its largest stride (64 with a P6 level, else 32)."""
    head_inputs = model_dict(name, 1)["head"][-1][0]
    return 64 if len(head_inputs) > 3 else 32


def build_detection_model(name_or_yaml: str, *, nc: int, verbose: bool = False):
    """An ultralytics DetectionModel, freshly initialised (a zoo name, or a path to a model .yaml)."""
    from ultralytics.nn.tasks import DetectionModel

    cfg = model_dict(name_or_yaml, nc) if name_or_yaml in LABELS else str(Path(name_or_yaml))
    return DetectionModel(cfg, nc=nc, verbose=verbose)


def parameter_counts(name: str, *, nc: int = 80, input_size: int = 640) -> dict:
    """Parameters of the body (backbone + neck) and the head, counted on the 'meta' device: the layers are built
    and a forward pass checks the output shapes, without allocating or initialising a single weight."""
    import torch
    from ultralytics.nn.tasks import parse_model

    with torch.device("meta"):
        layers, _ = parse_model(model_dict(name, nc), ch=3, verbose=False)
        outputs = _features(layers, torch.zeros(1, 3, input_size, input_size))
    head = sum(p.numel() for p in layers[-1].parameters())
    total = sum(p.numel() for p in layers.parameters())
    strides = [input_size // o.shape[-1] for o in outputs]
    return {"body": total - head, "head": head, "total": total, "strides": strides}


def _features(layers, x):
    """Run every layer but the head, as ultralytics' forward does (layer.f names each layer's inputs)."""
    saved = []
    for layer in layers:
        if layer.f != -1:
            x = saved[layer.f] if isinstance(layer.f, int) else [x if j == -1 else saved[j] for j in layer.f]
        if layer is layers[-1]:
            return x
        x = layer(x)
        saved.append(x)
    raise ValueError("a model needs a head")


def detection_gflops(model, input_size: int) -> float | None:
    """GFLOPs of one input_size image, profiled as ultralytics' get_flops does (thop, extrapolated from small
    stride-aligned images) but with a 3-channel image: get_flops takes the channel count from the first parameter,
    12 for the P6 YOLOv7 models (their first layer is a space-to-depth ReOrg), so its probe failed and the
    training card said "0.0 GFLOPs" for YOLOv7-W6 to -E6E. None (not shown) where a network cannot be profiled."""
    import thop
    import torch

    weight = next(model.parameters())
    image = torch.empty((1, 3, input_size, input_size), device=weight.device, dtype=weight.dtype)
    stride = max(int(model.stride.max()), 32)
    try:
        return round(thop.profile(model, inputs=[image], stride=stride, min_cells=1, verbose=False)[0] / 1e9 * 2, 2)
    except Exception:  # an edited network thop cannot trace: its figure is left out, the trained model is kept
        return None
