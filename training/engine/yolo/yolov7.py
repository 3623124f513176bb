"""The YOLOv7 family (tiny, base, X, W6, E6, D6, E6E) written as ultralytics model YAMLs.

The original networks (Wang, Bochkovskiy and Liao, 2022) are composed here from their building blocks — ELAN and
E-ELAN aggregation, MP down-sampling, DownC, SPPCSPC, the P6 models' ReOrg stem and extra stage — using only
layers ultralytics' YAML parser already knows, so a trained checkpoint loads anywhere ultralytics does (the
deployment side needs no code of ours). What had to change, and why:

- YOLOv7's composite modules (SPPCSPC, DownC, MP, SP) have no ultralytics counterpart: each is spelled out as its
  Conv / nn.MaxPool2d / Concat layers, with exactly the original's convolutions and channel counts.
- ReOrg + Conv (the P6 stem) is ultralytics' Focus: the same space-to-depth slicing followed by the same conv.
- RepConv (YOLOv7 base's last three 3x3s) is written as the plain 3x3 Conv it re-parameterises to for inference:
  the published parameter counts are those of the re-parameterised model.
- E-ELAN's parameter-free `Shortcut` (the sum of two ELAN branches in E6E) has no parser module; it is
  nn.Unflatten (a free view adding a leading axis) then CBFuse, which sums its inputs: x + y, no parameters.
- The head is ultralytics' anchor-free Detect on the lead outputs (P3-P5, or P3-P6) instead of IDetect /
  IAuxDetect; the auxiliary branches of the P6 models are training-only and absent from the published counts.
- The activation follows the original: LeakyReLU(0.1) for tiny, SiLU for the others.

`write_yamls()` regenerates training/engine/yolo/models/yolov7*.yaml; a test checks the files match.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

MODELS_DIR = Path(__file__).with_name("models")

# From the YOLOv7 paper's Table (640 px, COCO, re-parameterised models): name -> (params, GFLOPs, AP val, size)
PUBLISHED = {
    "yolov7-tiny": (6.2e6, 13.8, 38.7, 640),
    "yolov7": (36.9e6, 104.7, 51.4, 640),
    "yolov7x": (71.3e6, 189.9, 53.1, 640),
    "yolov7-w6": (70.4e6, 360.0, 54.9, 1280),
    "yolov7-e6": (97.2e6, 515.2, 56.0, 1280),
    "yolov7-d6": (154.7e6, 806.8, 56.6, 1280),
    "yolov7-e6e": (151.7e6, 843.2, 56.8, 1280),
}
LABELS = {"yolov7-tiny": "YOLOv7-tiny", "yolov7": "YOLOv7", "yolov7x": "YOLOv7-X", "yolov7-w6": "YOLOv7-W6",
          "yolov7-e6": "YOLOv7-E6", "yolov7-d6": "YOLOv7-D6", "yolov7-e6e": "YOLOv7-E6E"}
ANCHORS_PER_LEVEL = 3
COCO_CLASSES = 80


@dataclass
class _Net:
    """Rows [from, repeats, module, args] with absolute indices, and each row's output channels."""

    rows: list = field(default_factory=list)
    channels: list = field(default_factory=list)
    backbone_rows: int = 0
    aux_sources: list = field(default_factory=list)  # P6 models: where the training-only auxiliary head reads

    def add(self, source, module: str, args: list, out_channels: int) -> int:
        index = len(self.rows)
        self.rows.append([_relative(source, index), 1, module, args])
        self.channels.append(out_channels)
        return index

    def conv(self, source: int, c: int, k: int = 1, s: int = 1) -> int:
        return self.add(source, "Conv", [c, k, s], c)

    def maxpool(self, source: int, k: int, s: int) -> int:
        return self.add(source, "nn.MaxPool2d", [k, s, k // 2 if s == 1 else 0], self.channels[source])

    def concat(self, sources: list[int]) -> int:
        return self.add(sources, "Concat", [1], sum(self.channels[i] for i in sources))

    def upsample(self, source: int) -> int:
        return self.add(source, "nn.Upsample", [None, 2, "nearest"], self.channels[source])

    def last(self) -> int:
        return len(self.rows) - 1

    # --- YOLOv7's blocks ---

    def elan(self, source: int, c_branch: int, c_mid: int, depth: int, step: int, c_out: int) -> int:
        """ELAN: two 1x1 branches, a chain of `depth` 3x3 convs on the second, concat every `step`-th chain output
        (newest first) with both branches, fuse with a 1x1. step 2 is the backbone's pattern, 1 the neck's."""
        a = self.conv(source, c_branch, 1)
        b = self.conv(source, c_branch, 1)
        chain = [b]
        for _ in range(depth):
            chain.append(self.conv(chain[-1], c_mid, 3))
        taken = chain[depth::-step] if step == 1 else [chain[i] for i in range(depth, 0, -step)]
        sources = taken if step == 1 else [*taken, b]
        return self.conv(self.concat([*sources, a]), c_out, 1)

    def mp_down(self, source: int, c: int, extra: int | None = None) -> int:
        """MP-Conv down-sampling: max-pool + 1x1 beside 1x1 + strided 3x3, concatenated (+ a route in the neck)."""
        pooled = self.conv(self.maxpool(source, 2, 2), c, 1)
        strided = self.conv(self.conv(source, c, 1), c, 3, 2)
        return self.concat([strided, pooled] + ([extra] if extra is not None else []))

    def down_c(self, source: int, c: int) -> int:
        """DownC (E6, D6, E6E): 1x1 (input width) + strided 3x3 beside max-pool + 1x1, concatenated."""
        strided = self.conv(self.conv(source, self.channels[source], 1), c // 2, 3, 2)
        pooled = self.conv(self.maxpool(source, 2, 2), c // 2, 1)
        return self.concat([strided, pooled])

    def sppcspc(self, source: int, c: int) -> int:
        """SPPCSPC: a CSP split whose one side runs 1x1-3x3-1x1, SPP (5, 9, 13 max-pools), 1x1-3x3."""
        x1 = self.conv(self.conv(self.conv(source, c, 1), c, 3), c, 1)
        pools = [self.maxpool(x1, k, 1) for k in (5, 9, 13)]
        y1 = self.conv(self.conv(self.concat([x1, *pools]), c, 1), c, 3)
        y2 = self.conv(source, c, 1)
        return self.conv(self.concat([y1, y2]), c, 1)

    def shortcut(self, x: int, y: int) -> int:
        """x + y without parameters: CBFuse sums a selected entry of each input with the last input."""
        boxed = self.add(x, "nn.Unflatten", [0, "(1, -1)"], self.channels[x])
        return self.add([boxed, y], "CBFuse", [[0]], self.channels[y])

    def e_elan(self, source: int, c_branch: int, c_mid: int, depth: int, step: int, c_out: int) -> int:
        """E-ELAN (E6E): two ELANs of the same input (cardinality 2), merged by addition."""
        first = self.elan(source, c_branch, c_mid, depth, step, c_out)
        second = self.elan(source, c_branch, c_mid, depth, step, c_out)
        return self.shortcut(second, first)


def _relative(source, index: int):
    if isinstance(source, list):
        return [_relative(s, index) for s in source]
    return -1 if source == index - 1 else source


# --- the networks ---


def _tiny() -> tuple[_Net, list[int]]:
    n = _Net()
    x = n.conv(-1, 32, 3, 2)
    x = n.conv(x, 64, 3, 2)
    x = n.elan(x, 32, 32, 2, 1, 64)
    p3 = x = n.elan(n.maxpool(x, 2, 2), 64, 64, 2, 1, 128)
    p4 = x = n.elan(n.maxpool(x, 2, 2), 128, 128, 2, 1, 256)
    x = n.elan(n.maxpool(x, 2, 2), 256, 256, 2, 1, 512)
    n.backbone_rows = len(n.rows)
    # SPP block of the tiny model: a CSP split with max-pools 5, 9, 13 on one side.
    a = n.conv(x, 256, 1)
    b = n.conv(x, 256, 1)
    pools = [n.maxpool(b, k, 1) for k in (5, 9, 13)]
    spp = n.conv(n.concat([*reversed(pools), b]), 256, 1)
    top = n.conv(n.concat([spp, a]), 256, 1)
    x = n.conv(top, 128, 1)
    x = n.concat([n.upsample(x), n.conv(p4, 128, 1)])
    mid = n.elan(x, 64, 64, 2, 1, 128)
    x = n.conv(mid, 64, 1)
    x = n.concat([n.upsample(x), n.conv(p3, 64, 1)])
    out3 = n.elan(x, 32, 32, 2, 1, 64)
    out4 = n.elan(n.concat([n.conv(out3, 128, 3, 2), mid]), 64, 64, 2, 1, 128)
    out5 = n.elan(n.concat([n.conv(out4, 256, 3, 2), top]), 128, 128, 2, 1, 256)
    return n, [n.conv(out3, 128, 3), n.conv(out4, 256, 3), n.conv(out5, 512, 3)]


def _p5(widths: dict) -> tuple[_Net, list[int]]:
    """YOLOv7 and YOLOv7-X: the same plan at two widths and ELAN depths."""
    w, d, hd, hs = widths, widths["depth"], widths["head_depth"], widths["head_step"]
    n = _Net()
    x = n.conv(-1, w["stem"][0], 3, 1)
    x = n.conv(x, w["stem"][1], 3, 2)
    x = n.conv(x, w["stem"][1], 3, 1)
    x = n.conv(x, w["stem"][2], 3, 2)
    outs = []
    for i, (c_branch, c_out) in enumerate(w["stages"]):
        if i:
            x = n.mp_down(x, n.channels[x] // 2)
        x = n.elan(x, c_branch, c_branch, d, 2, c_out)
        outs.append(x)
    n.backbone_rows = len(n.rows)
    p3, p4 = outs[1], outs[2]
    spp = n.sppcspc(x, w["spp"])
    (c4, c4b, c4m), (c3, c3b, c3m), (c4d, c4db, c4dm), (c5d, c5db, c5dm) = w["neck"]
    x = n.concat([n.upsample(n.conv(spp, c4, 1)), n.conv(p4, c4, 1)])
    mid = n.elan(x, c4b, c4m, hd, hs, c4)
    x = n.concat([n.upsample(n.conv(mid, c3, 1)), n.conv(p3, c3, 1)])
    out3 = n.elan(x, c3b, c3m, hd, hs, c3)
    out4 = n.elan(n.mp_down(out3, c3, extra=mid), c4db, c4dm, hd, hs, c4d)
    out5 = n.elan(n.mp_down(out4, c4d, extra=spp), c5db, c5dm, hd, hs, c5d)
    return n, [n.conv(o, c, 3) for o, c in zip((out3, out4, out5), w["heads"], strict=True)]


_YOLOV7 = {"stem": (32, 64, 128), "depth": 4, "head_depth": 4, "head_step": 1, "spp": 512,
           "stages": [(64, 256), (128, 512), (256, 1024), (256, 1024)],
           "neck": [(256, 256, 128), (128, 128, 64), (256, 256, 128), (512, 512, 256)], "heads": (256, 512, 1024)}
_YOLOV7X = {"stem": (40, 80, 160), "depth": 6, "head_depth": 6, "head_step": 2, "spp": 640,
            "stages": [(64, 320), (128, 640), (256, 1280), (256, 1280)],
            "neck": [(320, 256, 256), (160, 128, 128), (320, 256, 256), (640, 512, 512)], "heads": (320, 640, 1280)}


def _p6(plan: dict) -> tuple[_Net, list[int]]:
    """W6, E6, D6, E6E: ReOrg stem, five stages to P6/64, a four-level neck (P3-P6)."""
    n = _Net()
    block = n.e_elan if plan.get("e_elan") else n.elan
    x = n.add(-1, "Focus", [plan["stem"], 3], plan["stem"])  # ReOrg + Conv 3x3
    outs = []
    for c_down, c_branch, c_out in plan["stages"]:
        x = n.conv(x, c_down, 3, 2) if plan["down"] == "conv" else n.down_c(x, c_down)
        x = block(x, c_branch, c_branch, plan["depth"], 2, c_out)
        outs.append(x)
    n.backbone_rows = len(n.rows)
    spp = n.sppcspc(x, plan["spp"])
    laterals = [spp]
    x = spp
    for route, (c_top, c_branch, c_mid) in zip(reversed(outs[1:4]), plan["up"], strict=True):
        x = n.concat([n.upsample(n.conv(x, c_top, 1)), n.conv(route, c_top, 1)])
        x = block(x, c_branch, c_mid, plan["depth"], 1, c_top)
        laterals.append(x)
    # laterals: [P6 (spp), P5, P4, P3]; go back down P3 -> P6
    outs_down = [x]
    for lateral, (c_down, c_branch, c_mid, c_out) in zip(laterals[-2::-1], plan["down_path"], strict=True):
        x = n.conv(x, c_down, 3, 2) if plan["down"] == "conv" else n.down_c(x, c_down)
        x = block(n.concat([x, lateral]), c_branch, c_mid, plan["depth"], 1, c_out)
        outs_down.append(x)
    n.aux_sources = [outs_down[0], *laterals[-2::-1]]  # P3 out, P4 and P5 laterals, SPPCSPC
    return n, [n.conv(o, c, 3) for o, c in zip(outs_down, plan["heads"], strict=True)]


_W6 = {"stem": 64, "down": "conv", "depth": 4, "spp": 512,
       "stages": [(128, 64, 128), (256, 128, 256), (512, 256, 512), (768, 384, 768), (1024, 512, 1024)],
       "up": [(384, 384, 192), (256, 256, 128), (128, 128, 64)],
       "down_path": [(256, 256, 128, 256), (384, 384, 192, 384), (512, 512, 256, 512)],
       "heads": (256, 512, 768, 1024)}
_E6 = {"stem": 80, "down": "downc", "depth": 6, "spp": 640,
       "stages": [(160, 64, 160), (320, 128, 320), (640, 256, 640), (960, 384, 960), (1280, 512, 1280)],
       "up": [(480, 384, 192), (320, 256, 128), (160, 128, 64)],
       "down_path": [(320, 256, 128, 320), (480, 384, 192, 480), (640, 512, 256, 640)],
       "heads": (320, 640, 960, 1280)}
_D6 = {"stem": 96, "down": "downc", "depth": 8, "spp": 768,
       "stages": [(192, 64, 192), (384, 128, 384), (768, 256, 768), (1152, 384, 1152), (1536, 512, 1536)],
       "up": [(576, 384, 192), (384, 256, 128), (192, 128, 64)],
       "down_path": [(384, 256, 128, 384), (576, 384, 192, 576), (768, 512, 256, 768)],
       "heads": (384, 768, 1152, 1536)}
_E6E = {**_E6, "e_elan": True}

BUILDERS = {
    "yolov7-tiny": _tiny,
    "yolov7": lambda: _p5(_YOLOV7),
    "yolov7x": lambda: _p5(_YOLOV7X),
    "yolov7-w6": lambda: _p6(_W6),
    "yolov7-e6": lambda: _p6(_E6),
    "yolov7-d6": lambda: _p6(_D6),
    "yolov7-e6e": lambda: _p6(_E6E),
}


def model_dict(name: str, nc: int = COCO_CLASSES) -> dict:
    """The ultralytics model dict of one YOLOv7 network (the body's outputs feed ultralytics' Detect)."""
    net, outputs = BUILDERS[name]()
    head_rows = net.rows[net.backbone_rows:]
    detect = [outputs, 1, "Detect", ["nc"]]
    spec = {"nc": nc}
    if name == "yolov7-tiny":
        spec["activation"] = "nn.LeakyReLU(0.1)"
    spec.update(backbone=net.rows[:net.backbone_rows], head=[*head_rows, detect])
    return spec


def _detect_convs(channels, nc: int) -> int:
    """IDetect / IAuxDetect per level: a 1x1 conv with bias to anchors x (5 + nc) outputs."""
    outputs = ANCHORS_PER_LEVEL * (5 + nc)
    return sum(c * outputs + outputs for c in channels)


def original_head_params(name: str, nc: int = COCO_CLASSES) -> int:
    """Parameters of YOLOv7's own (re-parameterised) lead detection head."""
    net, outputs = BUILDERS[name]()
    return _detect_convs([net.channels[o] for o in outputs], nc)


def auxiliary_head_params(name: str, nc: int = COCO_CLASSES) -> int:
    """The P6 models' training-only auxiliary head: a 3x3 Conv+BN per level (from the neck's earlier features
    to the lead head's widths) and its own 1x1 detection convs. Zero for the P5 models."""
    net, outputs = BUILDERS[name]()
    if not net.aux_sources:
        return 0
    widths = [net.channels[o] for o in outputs]
    convs = sum(net.channels[s] * c * 9 + 2 * c for s, c in zip(net.aux_sources, widths, strict=True))
    return convs + _detect_convs(widths, nc)


# The published D6 count (154.7 M) is the training graph: body 132.83 M + lead head 0.98 M + auxiliary head
# 20.89 M = 154.70 M, to the hundred thousand. The other six are counted without it (E6 with it would be 111.9 M,
# not the 97.2 M published). So D6's auxiliary head comes off too before the bodies are compared.
PUBLISHED_WITH_AUX = {"yolov7-d6"}


def published_head_params(name: str, nc: int = COCO_CLASSES) -> int:
    aux = auxiliary_head_params(name, nc) if name in PUBLISHED_WITH_AUX else 0
    return original_head_params(name, nc) + aux


def published_body_params(name: str) -> int:
    """The published total minus the detection head(s) it includes: what our backbone + neck should match."""
    return round(PUBLISHED[name][0]) - published_head_params(name)


def yaml_text(name: str) -> str:
    """The YAML file text: a header that says where it comes from, then a compact row per layer."""
    spec = model_dict(name)
    params, gflops, ap, size = PUBLISHED[name]
    lines = [
        f"# {LABELS[name]} (Wang, Bochkovskiy, Liao 2022) as an ultralytics model: YOLOv7's backbone and neck,",
        "# ultralytics' Detect head. Generated by training/engine/yolo/yolov7.py (see there for what changed).",
        f"# Published: {params / 1e6:.1f} M params, {gflops} GFLOPs at {size} px, {ap} AP (COCO val).",
        f"nc: {spec['nc']}",
    ]
    if "activation" in spec:
        lines.append(f"activation: {spec['activation']}")
    for section in ("backbone", "head"):
        lines.append(f"{section}:")
        start = 0 if section == "backbone" else len(spec["backbone"])
        for i, row in enumerate(spec[section], start=start):
            lines.append(f"  - {yaml.safe_dump(row, default_flow_style=True, width=1000).strip()}  # {i}")
    return "\n".join(lines) + "\n"


def yaml_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.yaml"


def write_yamls() -> list[Path]:
    paths = []
    for name in BUILDERS:
        path = yaml_path(name)
        path.write_text(yaml_text(name), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_yamls():
        print(written)
