"""The model zoo: ResNet, DenseNet and VGG classifiers at five complexity levels each (ResNet has a sixth, the
TANGO paper's ResNet-203), built without downloads.

Models are 3-channel (the data pipeline converts grayscale to RGB). Inputs of 32 px or less get a small-input
stem so the feature map does not vanish: ResNet and DenseNet use a 3x3 stride-1 stem without the max pool, VGG
keeps only as many max pools as the input can take and ends in a global average pool.

VGG models are the batch-norm variants (torchvision's `vgg16_bn` layout): plain VGG rarely trains from scratch.
"""

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.densenet import DenseNet
from torchvision.models.vgg import make_layers

from tango_common.weights import read_state_dict

SMALL_INPUT = 32  # at or below this many pixels a model gets the small-input stem

FAMILIES: dict[str, list[str]] = {
    # resnet203 is the TANGO paper's Table 1 model for the Cloud tier (see _resnet203).
    "resnet": ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet203"],
    "densenet": ["densenet_tiny", "densenet121", "densenet169", "densenet201", "densenet161"],
    "vgg": ["vgg_tiny", "vgg11", "vgg13", "vgg16", "vgg19"],
}

# growth rate, block config, initial features: torchvision's configurations plus our own small one.
_DENSENET_CONFIGS = {
    "densenet_tiny": (12, (2, 4, 6, 4), 24),
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
}

# torchvision's VGG configurations ("M" = max pool) plus a narrow one with the same five pools.
_VGG_CONFIGS = {
    "vgg_tiny": [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

Report = Callable[..., None]


def model_names() -> list[str]:
    return [name for names in FAMILIES.values() for name in names]


# Subnets of the once-for-all supernet are named by their architecture (see supernet.subnet_name), not listed.
SUBNET_FAMILY = "ofa"


def family_of(name: str) -> str:
    if name.startswith(SUBNET_FAMILY + "-"):
        return SUBNET_FAMILY
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise ValueError(f"Unknown model {name!r}; known: {', '.join(model_names())}.")


def complexity_level(name: str) -> int | None:
    """1 (smallest) upwards within the model's family (5 levels; ResNet 6 with the paper's ResNet-203); None for a
    searched subnet, which has no fixed level."""
    family = family_of(name)
    return None if family == SUBNET_FAMILY else FAMILIES[family].index(name) + 1


def build_model(name: str, *, num_classes: int, input_size: int, weights_path: Path | None = None,
                report: Report | None = None) -> nn.Module:
    """A freshly initialised classifier, optionally warm-started from a user's state dict."""
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    if input_size < 8:
        raise ValueError("input_size must be at least 8 pixels")
    builder = {"resnet": _resnet, "densenet": _densenet, "vgg": _vgg, SUBNET_FAMILY: _subnet}[family_of(name)]
    model = builder(name, num_classes=num_classes, small=input_size <= SMALL_INPUT, input_size=input_size)
    if weights_path is not None:
        load_weights(model, weights_path, report=report)
    return model


def load_trained_model(name: str, *, num_classes: int, input_size: int, weights_path: Path) -> nn.Module:
    """A model the training loop saved, ready for inference: every tensor must fit (strict), on CPU, eval mode."""
    model = build_model(name, num_classes=num_classes, input_size=input_size)
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model.eval()


def _subnet(name: str, *, num_classes: int, small: bool, input_size: int) -> nn.Module:
    from .supernet import build_subnet, parse_subnet_name

    return build_subnet(*parse_subnet_name(name, input_size=input_size), num_classes)


def _small_stem_conv(out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(3, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # as torchvision inits its stems
    return conv


# The TANGO paper's Table 1 prints "ResNet-203". No standard ResNet has 203 layers (He et al.'s deepest
# bottleneck ResNet is ResNet-200, blocks [3, 24, 36, 3]); we build it literally: 67 bottleneck blocks,
# [3, 24, 37, 3], so 3 x 67 convolutions + the stem + the classifier = 203 weighted layers.
RESNET203_BLOCKS = [3, 24, 37, 3]
RESNET203_NOTE = ("ResNet-203 as the TANGO paper prints it: no standard ResNet has 203 layers, so it is built "
                  "literally, a bottleneck ResNet with 67 blocks [3, 24, 37, 3]: 3 x 67 + 2 = 203 weighted layers "
                  "(ResNet-200 is [3, 24, 36, 3]).")
MODEL_NOTES = {"resnet203": RESNET203_NOTE}


def _resnet(name: str, *, num_classes: int, small: bool, input_size: int) -> nn.Module:
    if name == "resnet203":
        model = models.resnet.ResNet(models.resnet.Bottleneck, RESNET203_BLOCKS, num_classes=num_classes)
    else:
        model = getattr(models, name)(weights=None, num_classes=num_classes)
    if small:
        model.conv1 = _small_stem_conv(model.conv1.out_channels)
        model.maxpool = nn.Identity()
    return model


def _densenet(name: str, *, num_classes: int, small: bool, input_size: int) -> nn.Module:
    growth_rate, block_config, init_features = _DENSENET_CONFIGS[name]
    model = DenseNet(growth_rate=growth_rate, block_config=block_config, num_init_features=init_features,
                     num_classes=num_classes)
    if small:
        model.features.conv0 = _small_stem_conv(init_features)
        model.features.pool0 = nn.Identity()
    return model


class VGGClassifier(nn.Module):
    """torchvision's VGG layout (same state-dict keys as `vgg16_bn`), built without its ~100M-parameter head when
    the head is replaced anyway: allocating and initialising that head costs seconds per model."""

    def __init__(self, features: nn.Sequential, avgpool: nn.Module, classifier: nn.Sequential):
        super().__init__()
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier
        for module in self.modules():  # torchvision's VGG initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _vgg(name: str, *, num_classes: int, small: bool, input_size: int) -> nn.Module:
    config = _VGG_CONFIGS[name]
    features = make_layers(config, batch_norm=True)
    if small:
        _drop_late_pools(features, keep=max(0, int(math.log2(input_size)) - 1))
    if small or name == "vgg_tiny":
        # torchvision's head assumes a 7x7x512 map and holds ~100M parameters; a small input does not need it.
        channels = [c for c in config if c != "M"][-1]
        avgpool = nn.AdaptiveAvgPool2d(1)
        classifier = nn.Sequential(
            nn.Linear(channels, 256), nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(256, num_classes)
        )
    else:
        avgpool = nn.AdaptiveAvgPool2d((7, 7))
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
    model = VGGClassifier(features, avgpool, classifier)
    if avgpool.output_size == 1:
        # N(0, 0.01) suits the 4096-wide head; for the narrow one it gives near-zero logits that barely train.
        for layer in classifier:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    return model


def _drop_late_pools(features: nn.Sequential, *, keep: int) -> None:
    """Replace all but the first `keep` max pools with identities (same state-dict keys, map stays >= 2x2)."""
    pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
    for index in pools[keep:]:
        features[index] = nn.Identity()


def load_weights(model: nn.Module, weights_path: Path, *, report: Report | None = None) -> dict:
    """Load a user's state dict for transfer learning: matching keys load, shape mismatches (a head) are skipped."""
    state = read_state_dict(Path(weights_path))
    own = model.state_dict()
    loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    mismatched = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    unexpected = sorted(k for k in state if k not in own)
    missing = sorted(k for k in own if k not in loadable)
    if not loadable:
        raise ValueError(f"{Path(weights_path).name}: no tensor matches this model; is it a state dict for it?")
    model.load_state_dict(loadable, strict=False)
    summary = {"loaded": sorted(loadable), "skipped_shape": mismatched, "unexpected": unexpected, "missing": missing}
    if report is not None:
        report(_weights_summary_line(Path(weights_path).name, summary, total=len(own)))
    return summary


def _weights_summary_line(filename: str, summary: dict, *, total: int) -> str:
    line = f"weights {filename}: loaded {len(summary['loaded'])}/{total} tensors"
    if summary["skipped_shape"]:
        line += f"; skipped (shape differs): {', '.join(summary['skipped_shape'])}"
    if summary["unexpected"]:
        line += f"; ignored {len(summary['unexpected'])} keys this model lacks"
    return line


def model_profile(model: nn.Module, input_size: int) -> dict:
    """Parameters and compute of one forward pass at batch 1.

    Counts Conv2d and Linear layers only (BN, activations and pools are a few percent and vary by runtime).
    `macs` are multiply-accumulates and `flops` = 2 x macs. Many papers' "FLOPs" tables list MACs (ResNet-18 at
    224 px: 1.8 G), so compare like with like.
    """
    macs = 0

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() * kernel
        else:
            macs += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "macs": macs, "flops": 2 * macs}


__all__ = ["FAMILIES", "MODEL_NOTES", "build_model", "complexity_level", "family_of", "load_weights", "model_names",
           "model_profile"]
