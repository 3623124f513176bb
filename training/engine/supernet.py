"""A once-for-all elastic ResNet: trained once, then specialised into a subnet per device. Django-free.

Elastic dimensions, per stage: depth (how many residual blocks run), expand ratio (the width of each block's
inner convolution as a fraction of the stage width) and kernel size (3x3 is the centre of the 5x5 kernel, as in
Once-for-All). Stage widths stay fixed so every skip connection keeps its shape.

Training uses the sandwich rule (Yu et al., BigNAS / universally slimmable networks) rather than Once-for-All's
progressive shrinking: each step trains the largest subnet on the labels and the smallest plus two random subnets
on the largest one's predictions (in-place distillation) blended half and half with the labels. It needs no
phase schedule, which suits the few epochs a CPU affords. Batch-norm statistics differ between subnets, so a
subnet's statistics are recalibrated on training images before it is evaluated or extracted (as Once-for-All
does): one fixed batch during the search, the whole training split for the chosen subnet.
"""

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

Report = Callable[..., None]


@dataclass(frozen=True)
class SupernetSpec:
    """The search space. `small_input` picks the stride-1 stem for inputs of 32 px or less, as the zoo does."""

    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 2, 3)
    expands: tuple[float, ...] = (0.5, 0.75, 1.0)
    kernels: tuple[int, ...] = (3, 5)
    stem_width: int = 32
    small_input: bool = True

    @property
    def stages(self) -> int:
        return len(self.widths)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SupernetSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class SubnetConfig:
    """One choice per stage for each elastic dimension."""

    depths: tuple[int, ...]
    expands: tuple[float, ...]
    kernels: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"depths": list(self.depths), "expands": list(self.expands), "kernels": list(self.kernels)}

    @classmethod
    def from_dict(cls, values: dict) -> "SubnetConfig":
        return cls(tuple(values["depths"]), tuple(values["expands"]), tuple(values["kernels"]))

    def label(self) -> str:
        return "d{}-e{}-k{}".format("".join(map(str, self.depths)),
                                    "".join(str(round(e * 100)) for e in self.expands),
                                    "".join(map(str, self.kernels)))


def largest(spec: SupernetSpec) -> SubnetConfig:
    n = spec.stages
    return SubnetConfig((max(spec.depths),) * n, (max(spec.expands),) * n, (max(spec.kernels),) * n)


def smallest(spec: SupernetSpec) -> SubnetConfig:
    n = spec.stages
    return SubnetConfig((min(spec.depths),) * n, (min(spec.expands),) * n, (min(spec.kernels),) * n)


def sample(spec: SupernetSpec, rng: random.Random) -> SubnetConfig:
    n = spec.stages
    return SubnetConfig(tuple(rng.choice(spec.depths) for _ in range(n)),
                        tuple(rng.choice(spec.expands) for _ in range(n)),
                        tuple(rng.choice(spec.kernels) for _ in range(n)))


def inner_width(width: int, expand: float) -> int:
    return max(8, int(round(width * expand / 8)) * 8)


# -- elastic layers -----------------------------------------------------------------------------------------------

class ElasticConv(nn.Conv2d):
    """A convolution whose output channels and kernel are sliced at run time; input channels follow the input."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def sliced_weight(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        trim = (self.kernel_size[0] - kernel) // 2
        weight = self.weight[:out_channels, :in_channels]
        return weight[:, :, trim:trim + kernel, trim:trim + kernel] if trim else weight

    def forward(self, x: torch.Tensor, out_channels: int | None = None, kernel: int | None = None) -> torch.Tensor:
        out_channels = out_channels or self.out_channels
        kernel = kernel or self.kernel_size[0]
        weight = self.sliced_weight(x.shape[1], out_channels, kernel)
        return F.conv2d(x, weight, stride=self.stride, padding=kernel // 2)


class ElasticBatchNorm(nn.BatchNorm2d):
    """Batch norm over the first `c` channels; the sliced statistics are views, so they update in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            self.training, factor, self.eps)


class ElasticBlock(nn.Module):
    """A basic residual block (two convolutions); the first one's width and both kernels are elastic."""

    def __init__(self, in_channels: int, width: int, stride: int, kernel: int):
        super().__init__()
        self.conv1 = ElasticConv(in_channels, width, kernel, stride)
        self.bn1 = ElasticBatchNorm(width)
        self.conv2 = ElasticConv(width, width, kernel)
        self.bn2 = ElasticBatchNorm(width)
        self.shortcut = None
        if stride != 1 or in_channels != width:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor, inner: int, kernel: int) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x, inner, kernel)))
        out = self.bn2(self.conv2(out, None, kernel))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


def _stem(spec: SupernetSpec) -> nn.Sequential:
    if spec.small_input:
        return nn.Sequential(nn.Conv2d(3, spec.stem_width, 3, 1, 1, bias=False), nn.BatchNorm2d(spec.stem_width),
                             nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(3, spec.stem_width, 7, 2, 3, bias=False), nn.BatchNorm2d(spec.stem_width),
                         nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))


class Supernet(nn.Module):
    def __init__(self, spec: SupernetSpec, num_classes: int):
        super().__init__()
        self.spec, self.num_classes = spec, num_classes
        self.config = largest(spec)  # the active subnet
        self.stem = _stem(spec)
        kmax = max(spec.kernels)
        stages, in_channels = [], spec.stem_width
        for index, width in enumerate(spec.widths):
            stride = 1 if index == 0 else 2
            blocks = [ElasticBlock(in_channels if b == 0 else width, width, stride if b == 0 else 1, kmax)
                      for b in range(max(spec.depths))]
            stages.append(nn.ModuleList(blocks))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(spec.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        c = self.config
        for stage, width, depth, expand, kernel in zip(self.stages, self.spec.widths, c.depths, c.expands,
                                                       c.kernels, strict=True):
            for block in stage[:depth]:
                x = block(x, inner_width(width, expand), kernel)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- a standalone subnet ------------------------------------------------------------------------------------------

class SubnetBlock(nn.Module):
    def __init__(self, in_channels: int, width: int, inner: int, stride: int, kernel: int, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inner, kernel, stride, kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, width, kernel, 1, kernel // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = (nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(width)) if shortcut else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


class Subnet(nn.Module):
    """A plain network (ordinary Conv2d/BatchNorm2d layers) that exports, converts and visualises like any other."""

    def __init__(self, spec: SupernetSpec, config: SubnetConfig, num_classes: int):
        super().__init__()
        self.stem = _stem(spec)
        blocks, in_channels = [], spec.stem_width
        for index, (width, depth, expand, kernel) in enumerate(
                zip(spec.widths, config.depths, config.expands, config.kernels, strict=True)):
            for b in range(depth):
                stride = 2 if index > 0 and b == 0 else 1
                cin = in_channels if b == 0 else width
                blocks.append(SubnetBlock(cin, width, inner_width(width, expand), stride, kernel,
                                          shortcut=stride != 1 or cin != width))
            in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(spec.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_subnet(spec: SupernetSpec, config: SubnetConfig, num_classes: int) -> Subnet:
    """A freshly initialised subnet of this architecture (for training from scratch, or to load weights into)."""
    model = Subnet(spec, config, num_classes)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def extract_subnet(supernet: Supernet, config: SubnetConfig) -> Subnet:
    """The subnet with its weights (and the supernet's current BN statistics) copied out of the supernet."""
    spec = supernet.spec
    subnet = Subnet(spec, config, supernet.num_classes)
    subnet.stem.load_state_dict(supernet.stem.state_dict())
    subnet.fc.load_state_dict(supernet.fc.state_dict())
    target = iter(subnet.blocks)
    for stage, width, depth, expand, kernel in zip(supernet.stages, spec.widths, config.depths, config.expands,
                                                   config.kernels, strict=True):
        inner = inner_width(width, expand)
        for block in stage[:depth]:
            _copy_block(block, next(target), inner, kernel)
    return subnet


@torch.no_grad()
def _copy_block(source: ElasticBlock, target: SubnetBlock, inner: int, kernel: int) -> None:
    target.conv1.weight.copy_(source.conv1.sliced_weight(target.conv1.in_channels, inner, kernel))
    target.conv2.weight.copy_(source.conv2.sliced_weight(inner, target.conv2.out_channels, kernel))
    for src, dst, n in ((source.bn1, target.bn1, inner), (source.bn2, target.bn2, target.bn2.num_features)):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[:n])
    if target.shortcut is not None:
        target.shortcut.load_state_dict(source.shortcut.state_dict())


# -- costs, computed from the architecture without building it ----------------------------------------------------

def subnet_profile(spec: SupernetSpec, config: SubnetConfig, *, input_size: int, num_classes: int) -> dict:
    """What one batch-1 forward pass of the subnet costs, counted the way the recommender's profiler counts a built
    model (a test holds the two equal), in microseconds rather than the profiler's second per architecture: the
    search asks for thousands. Per leaf layer in execution order: MACs, output values, and the values alive (its
    inputs, its output, and the input every enclosing module still holds: the image, the stem's output, the
    block's input for its shortcut)."""
    counts = {"params": 0, "macs": 0, "macs_1x1": 0, "macs_linear": 0, "activation_values": 0, "peak_values": 0,
              "layers": 0, "ops": 0}
    image = 3 * input_size * input_size

    def leaf(out_values: int, live: int, *, macs: int = 0, params: int = 0, weighted: bool = False, k: int = 0):
        counts["ops"] += 1
        counts["activation_values"] += out_values
        counts["peak_values"] = max(counts["peak_values"], live)
        counts["macs"] += macs
        counts["macs_1x1"] += macs if k == 1 else 0
        counts["params"] += params
        counts["layers"] += weighted

    def conv(cin, cout, k, size, live_before):
        out = cout * size * size
        leaf(out, live_before + out, macs=out * cin * k * k, params=cin * cout * k * k, weighted=True, k=k)
        return out

    def bn(channels, in_values, live_before):
        leaf(in_values, live_before + in_values, params=2 * channels)
        return in_values

    size = input_size if spec.small_input else math.ceil(input_size / 2)
    c = conv(3, spec.stem_width, 3 if spec.small_input else 7, size, image)
    b = bn(spec.stem_width, c, image + c)
    leaf(b, image + b)  # the in-place ReLU
    stem_out = b
    if not spec.small_input:
        size = math.ceil(size / 2)
        stem_out = spec.stem_width * size * size
        leaf(stem_out, image + b + stem_out)  # the max pool
    cin, x, first = spec.stem_width, stem_out, True
    for index, (width, depth, expand, kernel) in enumerate(
            zip(spec.widths, config.depths, config.expands, config.kernels, strict=True)):
        inner = inner_width(width, expand)
        for b_index in range(depth):
            stride = 2 if index > 0 and b_index == 0 else 1
            size = math.ceil(size / stride)
            block_in = cin if b_index == 0 else width
            held = image + stem_out + (0 if first else x)  # the first block's input is the stem's output
            first = False
            c1 = conv(block_in, inner, kernel, size, held)
            bn(inner, c1, held + c1)
            c2 = conv(inner, width, kernel, size, held + c1)  # its input is the ReLU's output, as big as c1
            bn(width, c2, held + c2)
            if stride != 1 or block_in != width:
                s = conv(block_in, width, 1, size, held)
                bn(width, s, held + s)
            x = width * size * size
        cin = width
    linear = spec.widths[-1] * num_classes
    leaf(num_classes, image + spec.widths[-1] + num_classes, macs=linear, params=linear + num_classes, weighted=True)
    counts["macs_linear"] = linear
    counts["flops"] = 2 * counts["macs"]
    return counts


# -- training -----------------------------------------------------------------------------------------------------

@dataclass
class SupernetTrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-5
    random_subnets: int = 2  # sampled between the largest and the smallest in each sandwich step
    # The smaller subnets' loss: (1 - w) x distillation from the largest + w x the labels. BigNAS distils only
    # (w = 0); over the few epochs a CPU affords, half on the labels trained the digits' supernet better (largest
    # and smallest 98.9% against 97.5%, worst inherited-vs-scratch gap 0.3 points against 0.5, one run each).
    label_weight: float = 0.5
    seed: int = 0


@dataclass
class SupernetResult:
    history: list[dict] = field(default_factory=list)
    largest_top1: float = 0.0
    smallest_top1: float = 0.0
    seconds: float = 0.0


def supernet_train(supernet: Supernet, train_loader: Iterable, val_loader: Iterable, *,
                   config: SupernetTrainConfig, report: Report, out_path: Path | None = None) -> SupernetResult:
    """Sandwich-rule training; `report(line, progress)` may raise to cancel (the weights so far are saved first)."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    spec = supernet.spec
    optimizer = torch.optim.SGD(supernet.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    steps = config.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps,
                                                    pct_start=0.15)
    result, started, step = SupernetResult(), time.monotonic(), 0
    for epoch in range(1, config.epochs + 1):
        supernet.train()
        loss_sum = seen = 0
        for images, labels in train_loader:
            loss_sum += _sandwich_step(supernet, images, labels, spec, rng, config.random_subnets,
                                       config.label_weight) * len(labels)
            seen += len(labels)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            try:
                report(None, progress=100 * step / steps)
            except BaseException:
                if out_path is not None:
                    supernet_save(supernet, out_path)
                raise
        top_large = evaluate_subnet(supernet, largest(spec), train_loader, val_loader)
        top_small = evaluate_subnet(supernet, smallest(spec), train_loader, val_loader)
        result.history.append({"epoch": epoch, "train_loss": loss_sum / max(1, seen), "largest_top1": top_large,
                               "smallest_top1": top_small})
        report(f"supernet epoch {epoch}/{config.epochs}  sandwich loss {loss_sum / max(1, seen):.4f}  "
               f"largest top-1 {100 * top_large:.1f}%  smallest top-1 {100 * top_small:.1f}%",
               progress=100 * step / steps)
    result.largest_top1, result.smallest_top1 = top_large, top_small
    result.seconds = time.monotonic() - started
    if out_path is not None:
        supernet_save(supernet, out_path)
    return result


def _sandwich_step(supernet: Supernet, images, labels, spec, rng: random.Random, random_subnets: int,
                   label_weight: float = 0.0) -> float:
    supernet.config = largest(spec)
    logits = supernet(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    soft = F.softmax(logits.detach(), dim=1)
    for config in [smallest(spec)] + [sample(spec, rng) for _ in range(random_subnets)]:
        supernet.config = config
        # In-place distillation: the small subnets learn the largest one's predictions, a smoother target.
        logits = supernet(images)
        loss = F.cross_entropy(logits, soft)
        if label_weight:
            loss = (1 - label_weight) * loss + label_weight * F.cross_entropy(logits, labels)
        loss.backward()
    supernet.config = largest(spec)
    return loss.item()


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: Iterable, *, batches: int = 4) -> None:
    """Re-estimate batch-norm statistics for the active architecture from a few training batches."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    for index, (images, _) in enumerate(loader):
        if index >= batches:
            break
        model(images)
    for m, (momentum, _) in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def top1(model: nn.Module, loader: Iterable) -> float:
    model.eval()
    correct = seen = 0
    for images, labels in loader:
        correct += int((model(images).argmax(1) == labels).sum())
        seen += len(labels)
    return correct / max(1, seen)


def evaluate_subnet(supernet: Supernet, config: SubnetConfig, calibration: Iterable, val: Iterable) -> float:
    """Top-1 of one subnet with recalibrated BN statistics; the supernet's own statistics are left as they were."""
    saved = {k: v.clone() for k, v in supernet.state_dict().items() if "running" in k or "num_batches" in k}
    supernet.config = config
    try:
        recalibrate_bn(supernet, calibration)
        return top1(supernet, val)
    finally:
        supernet.load_state_dict(saved, strict=False)
        supernet.config = largest(supernet.spec)


def subnet_for(supernet: Supernet, config: SubnetConfig, calibration: Iterable, *, batches: int = 4) -> Subnet:
    """The standalone subnet with BN statistics recalibrated for it from `batches` batches of `calibration`."""
    subnet = extract_subnet(supernet, config)
    recalibrate_bn(subnet, calibration, batches=batches)
    return subnet


def supernet_save(supernet: Supernet, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"spec": supernet.spec.as_dict(), "num_classes": supernet.num_classes,
                "state_dict": supernet.state_dict()}, tmp)
    tmp.replace(path)


def supernet_load(path: Path) -> Supernet:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    supernet = Supernet(SupernetSpec.from_dict(checkpoint["spec"]), checkpoint["num_classes"])
    supernet.load_state_dict(checkpoint["state_dict"])
    return supernet.eval()


# -- per-device search ---------------------------------------------------------------------------------------------

def fixed_batch(loader: Iterable, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` examples of a loader as one (images, labels) pair, taken once: every subnet is then measured
    on the same images, in one forward pass instead of the loader's batches."""
    images, labels, seen = [], [], 0
    for x, y in loader:
        images.append(x)
        labels.append(y)
        seen += len(y)
        if limit is not None and seen >= limit:
            break
    return torch.cat(images)[:limit], torch.cat(labels)[:limit]


class SubnetEvaluator:
    """Top-1 of subnets with inherited weights, memoised per architecture, so every device's search reuses the
    others' evaluations. A subnet's batch-norm statistics are recalibrated from one fixed calibration batch (one
    forward pass), and its top-1 is taken on one fixed held-out batch: the same images for every subnet, so their
    accuracies compare without sampling noise. The supernet's own statistics are put back after each one."""

    def __init__(self, supernet: Supernet, calibration: torch.Tensor, held_out: tuple[torch.Tensor, torch.Tensor],
                 *, chunk: int = 512):
        self.supernet, self.chunk = supernet, chunk
        self.calibration = [(x, None) for x in calibration.split(chunk)]
        self.held_out = list(zip(*(t.split(chunk) for t in held_out), strict=True))
        self.values: dict[SubnetConfig, float] = {}
        self._saved = [(buffer, buffer.clone()) for buffer in supernet.buffers()]

    @torch.no_grad()
    def __call__(self, config: SubnetConfig) -> float:
        if config not in self.values:
            self.supernet.config = config
            try:
                recalibrate_bn(self.supernet, self.calibration, batches=len(self.calibration))
                self.values[config] = top1(self.supernet, self.held_out)
            finally:
                self.restore()
        return self.values[config]

    @torch.no_grad()
    def restore(self) -> None:
        for buffer, saved in self._saved:
            buffer.copy_(saved)
        self.supernet.config = largest(self.supernet.spec)
        self.supernet.eval()


@dataclass
class SearchResult:
    config: SubnetConfig
    accuracy: float  # on the search's held-out batch
    latency_ms: float
    fits: bool  # False: nothing in the space met the budget; `config` is then the fastest found
    evaluated: int  # accuracy evaluations this target's search added to the archive

    def as_dict(self) -> dict:
        return {"config": self.config.as_dict(), "label": self.config.label(), "accuracy": self.accuracy,
                "latency_ms": self.latency_ms, "fits": self.fits, "evaluated": self.evaluated}


@dataclass(frozen=True)
class Target:
    """A device to specialise for: its predicted latency of a subnet, and its budget."""

    name: str
    latency_ms: Callable[[SubnetConfig], float]
    budget_ms: float


@dataclass
class EvolutionSettings:
    archive: int = 32  # random subnets evaluated before any device's search: every search starts from them
    population: int = 12  # new subnets per generation, per device
    generations: int = 3
    patience: int = 1  # generations without a better subnet within the budget before a target's search stops
    mutate_prob: float = 0.25
    seed: int = 0

    @property
    def parents(self) -> int:
        return max(2, self.population // 3)


def search_targets(spec: SupernetSpec, *, accuracy: Callable[[SubnetConfig], float], targets: Iterable[Target],
                   settings: EvolutionSettings | None = None, report: Report | None = None) -> list[SearchResult]:
    """For each target, the most accurate subnet whose predicted latency fits its budget.

    One archive of evaluated subnets serves every target (Once-for-All's search, with real evaluations instead of
    its accuracy predictor): it starts with the largest, the smallest and `archive` random subnets; each target's
    evolution breeds from the best archived subnets within its budget and adds its children to the archive, and
    each target's answer is the best archived subnet within its budget, whichever target's search evaluated it.
    A target's evolution stops early once a generation finds nothing better than the archive held. Devices with
    similar budgets so share most of the work, and later ones need few new evaluations."""
    s = settings or EvolutionSettings()
    rng = random.Random(s.seed)
    archive: dict[SubnetConfig, float] = {}

    def evaluate(configs) -> int:
        new = [c for c in dict.fromkeys(configs) if c not in archive]
        for config in new:
            archive[config] = accuracy(config)
        return len(new)

    evaluate([largest(spec), smallest(spec)] + [sample(spec, rng) for _ in range(s.archive)])
    results = []
    for target in targets:
        latency = _memo(target.latency_ms)

        def fitting(latency=latency, budget=target.budget_ms) -> list[SubnetConfig]:
            return [c for c in archive if latency(c) <= budget]

        added = 0
        if len(fitting()) < s.parents:  # a tight budget: sample the corner of the space that fits it
            added += evaluate(_fitting_population(spec, rng, latency, target.budget_ms, s.population))
        if not fitting():
            fastest = smallest(spec)
            results.append(SearchResult(fastest, archive[fastest], latency(fastest), False, added))
            continue
        best_so_far, stale = max(archive[c] for c in fitting()), 0
        for _ in range(s.generations):
            if stale >= s.patience:  # the archive already holds this budget's best: stop breeding for it
                break
            parents = sorted(fitting(), key=archive.get, reverse=True)[: s.parents]
            children: list[SubnetConfig] = []
            for _ in range(s.population * 10):  # tries: a child that breaks the budget or is known is dropped
                if len(children) >= s.population:
                    break
                child = (_mutate(rng.choice(parents), spec, rng, s.mutate_prob) if rng.random() < 0.5
                         else _crossover(rng.choice(parents), rng.choice(parents), rng))
                if child not in archive and child not in children and latency(child) <= target.budget_ms:
                    children.append(child)
            added += evaluate(children)
            best_now = max(archive[c] for c in fitting())
            stale = 0 if best_now > best_so_far else stale + 1
            best_so_far = best_now
        best = max(fitting(), key=lambda c: (archive[c], -latency(c)))
        results.append(SearchResult(best, archive[best], latency(best), True, added))
        if report is not None:
            report(f"{target.name}: {best.label()} top-1 {100 * archive[best]:.1f}% (held-out batch), predicted "
                   f"{latency(best):.3f} ms within {target.budget_ms:.3f} ms; {added} new evaluations, "
                   f"{len(archive)} in the archive")
    return results


def evolutionary_search(spec: SupernetSpec, *, accuracy: Callable[[SubnetConfig], float],
                        latency_ms: Callable[[SubnetConfig], float], budget_ms: float,
                        settings: EvolutionSettings | None = None) -> SearchResult:
    """One target's search (see search_targets)."""
    return search_targets(spec, accuracy=accuracy, targets=[Target("", latency_ms, budget_ms)],
                          settings=settings)[0]


def _memo(function: Callable[[SubnetConfig], float]) -> Callable[[SubnetConfig], float]:
    values: dict[SubnetConfig, float] = {}

    def memoised(config: SubnetConfig) -> float:
        if config not in values:
            values[config] = function(config)
        return values[config]

    return memoised


def _fitting_population(spec, rng, latency_ms, budget_ms, size) -> list[SubnetConfig]:
    population = []
    for _ in range(size * 20):
        if len(population) >= size:
            break
        config = sample(spec, rng)
        if config not in population and latency_ms(config) <= budget_ms:
            population.append(config)
    if not population and latency_ms(smallest(spec)) <= budget_ms:
        population.append(smallest(spec))
    return population


def _mutate(config: SubnetConfig, spec: SupernetSpec, rng: random.Random, p: float) -> SubnetConfig:
    def pick(values, choices):
        return tuple(rng.choice(choices) if rng.random() < p else v for v in values)

    return SubnetConfig(pick(config.depths, spec.depths), pick(config.expands, spec.expands),
                        pick(config.kernels, spec.kernels))


def _crossover(a: SubnetConfig, b: SubnetConfig, rng: random.Random) -> SubnetConfig:
    def mix(x, y):
        return tuple(rng.choice(pair) for pair in zip(x, y, strict=True))

    return SubnetConfig(mix(a.depths, b.depths), mix(a.expands, b.expands), mix(a.kernels, b.kernels))


# -- data and plain training (fine-tuning a subnet, or training one alone for comparison) --------------------------

def preload(dataset, *, batch_size: int = 256) -> TensorDataset:
    """The whole dataset as tensors (its deterministic transform applied once): a supernet step then costs no
    image decoding, which on small data is most of the time."""
    images, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size):
        images.append(x)
        labels.append(y)
    return TensorDataset(torch.cat(images), torch.cat(labels))


def subnet_train(model: nn.Module, train_loader: Iterable, val_loader: Iterable, *, epochs: int, lr: float,
                 report: Report, weight_decay: float = 5e-5) -> float:
    """Plain supervised training with the supernet's recipe (SGD, one-cycle); returns the final val top-1."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps = max(1, epochs * len(train_loader))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    accuracy = top1(model, val_loader)
    for epoch in range(1, epochs + 1):
        model.train()
        for images, labels in train_loader:
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            report(None)
        accuracy = top1(model, val_loader)
        report(f"epoch {epoch}/{epochs}  top-1 {100 * accuracy:.1f}%", progress=100 * epoch / epochs)
    return accuracy


# -- subnets as zoo model names -----------------------------------------------------------------------------------

def subnet_name(spec: SupernetSpec, config: SubnetConfig) -> str:
    """A name that rebuilds the architecture on its own (the zoo, the visualiser and the bundle need nothing else):
    `ofa-w16-32-64-128-d2312-e50-75-100-50-k3553`. The stem is as wide as the first stage."""
    return "ofa-w{}-d{}-e{}-k{}".format("-".join(map(str, spec.widths)), "".join(map(str, config.depths)),
                                        "-".join(str(round(e * 100)) for e in config.expands),
                                        "".join(map(str, config.kernels)))


def parse_subnet_name(name: str, *, input_size: int) -> tuple[SupernetSpec, SubnetConfig]:
    try:
        prefix, rest = name.split("-w", 1)
        widths, rest = rest.split("-d", 1)
        depths, rest = rest.split("-e", 1)
        expands, kernels = rest.split("-k", 1)
        spec = SupernetSpec(widths=tuple(int(w) for w in widths.split("-")), stem_width=int(widths.split("-")[0]),
                            small_input=input_size <= 32)
        config = SubnetConfig(tuple(int(d) for d in depths), tuple(int(e) / 100 for e in expands.split("-")),
                              tuple(int(k) for k in kernels))
    except ValueError:
        raise ValueError(f"{name!r} is not a supernet subnet name (ofa-w…-d…-e…-k…).") from None
    if prefix != "ofa" or not (len(spec.widths) == len(config.depths) == len(config.expands) == len(config.kernels)):
        raise ValueError(f"{name!r} is not a supernet subnet name (ofa-w…-d…-e…-k…).")
    # Only architectures the search space holds: a name typed into the editor or the API builds nothing bigger.
    if not (1 <= spec.stages <= MAX_STAGES and all(8 <= w <= MAX_WIDTH for w in spec.widths)
            and set(config.depths) <= set(spec.depths) and set(config.expands) <= set(spec.expands)
            and set(config.kernels) <= set(spec.kernels)):
        raise ValueError(f"{name!r} is not a subnet of the supernet's search space (depths {spec.depths}, expand "
                         f"ratios {spec.expands}, kernels {spec.kernels}, up to {MAX_STAGES} stages of 8 to "
                         f"{MAX_WIDTH} channels).")
    return spec, config


MAX_STAGES, MAX_WIDTH = 6, 1024
