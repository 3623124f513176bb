"""Costs of a candidate network, measured from the model itself (the shell's glue between the zoo and the core).

The model is built on PyTorch's meta device: shapes propagate through the forward pass, nothing is allocated or
computed, so even ResNet-203 at 1280 px profiles in well under a second. Forward hooks count what the core needs;
the same pass, seen from PyTorch's dispatcher, lists the kernels a runtime executes (the latency model's input).
The architecture signature hashes the model's layer listing and the input size, so two names for one network
share a cache row and an edited network gets its own. Imported only where models are built (worker, bench).
"""

import hashlib

import torch

from recommender.engine.costs import Costs
from tango_common.op_counter import KernelCounter, OpCounter


def architecture_signature(model, input_size: int) -> str:
    return hashlib.sha256(f"{input_size}|{model!r}".encode()).hexdigest()[:20]


def build_on_meta(model_name: str, *, num_classes: int, input_size: int):
    from training.engine.zoo import build_model

    with torch.device("meta"):
        return build_model(model_name, num_classes=num_classes, input_size=input_size).eval()


def profile_model(model, input_size: int) -> Costs:
    """Count the costs of one batch-1 forward pass with hooks (works on meta and real models alike)."""
    counter = OpCounter()
    hooks = counter.attach(model)
    try:
        device = next(model.parameters()).device
        with torch.no_grad(), KernelCounter() as kernels:
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    params = sum(p.numel() for p in model.parameters())
    return Costs(params=params, flops=2.0 * counter.macs, weight_bytes=4.0 * params,
                 activation_bytes=4.0 * counter.activation_values, peak_activation_bytes=4.0 * counter.peak_values,
                 layers=counter.layers, ops=counter.ops, signature=architecture_signature(model, input_size),
                 extra={"conv1x1_flops": 2.0 * counter.macs_1x1, "linear_flops": 2.0 * counter.macs_linear},
                 kernels=kernels.profile())


def build_detection_on_meta(model_name: str, *, num_classes: int):
    """A zoo detector's layers on the meta device, run in ultralytics' routing order.

    ultralytics' DetectionModel cannot be built on meta (its bias initialisation reads tensor values), so the
    layers are parsed from the same model dict and routed here as its forward does; the head runs in training mode
    (raw maps: the box decoding after it is a few element-wise ops).
    """
    from ultralytics.nn.tasks import parse_model

    from training.engine.yolo.zoo import model_dict
    from visualizer.graph.yolo import Routed  # the visualiser's costs run the same routing

    with torch.device("meta"):
        layers, _ = parse_model(model_dict(model_name, num_classes), ch=3, verbose=False)
        model = Routed(layers).eval()
    # The head's own flag only (its convolutions' BatchNorm stays in eval: at small inputs a P6 level is 1x1).
    layers[-1].training = True
    return model
