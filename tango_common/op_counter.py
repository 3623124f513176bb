"""Forward hooks that add up a network's MACs, activations and largest live set of tensors.

One counter for the recommender's cost profile of a whole model and for the visualiser's row-by-row profile of a
detector (whose sum must equal the whole model's): both read the same figures the same way.
"""


class OpCounter:
    """Peak activation memory is estimated as, at each leaf operation, its inputs + its output + the inputs its
    enclosing modules still hold (a residual block keeps its input alive for the shortcut). Each tensor is counted
    once. It is an estimate of the eager-mode peak; the memory model is calibrated on measured records.

    `held` starts the enclosing inputs with tensors held from outside (a row of a detector: the network's image).
    """

    def __init__(self, held: list[tuple[int, int]] | None = None):
        self.macs = self.macs_1x1 = self.macs_linear = 0
        self.activation_values = self.peak_values = 0
        self.layers = self.ops = 0
        self.held: list[tuple[int, int]] = list(held or [])  # (tensor id, numel) of each enclosing first input

    def attach(self, model) -> list:
        hooks = []
        for module in model.modules():
            if list(module.children()):
                hooks.append(module.register_forward_pre_hook(self._enter))
                hooks.append(module.register_forward_hook(self._leave))
            else:
                hooks.append(module.register_forward_hook(self._leaf))
        return hooks

    def _enter(self, module, inputs):
        tensor = first_tensor(inputs)
        self.held.append((id(tensor), tensor.numel()) if tensor is not None else (0, 0))

    def _leave(self, module, inputs, output):
        self.held.pop()

    def _leaf(self, module, inputs, output):
        from torch import nn  # here: importing tango_common must not import torch

        out = first_tensor((output,))
        if out is None:
            return
        self.ops += 1
        self.activation_values += out.numel()
        live = {id(t): t.numel() for t in inputs if hasattr(t, "numel")}
        live.update(dict(self.held))
        live[id(out)] = out.numel()
        self.peak_values = max(self.peak_values, sum(live.values()))
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            self.macs += out.numel() * kernel
            self.macs_1x1 += out.numel() * kernel if module.kernel_size == (1, 1) else 0
            self.layers += 1
        elif isinstance(module, nn.Linear):
            self.macs += out.numel() * module.in_features
            self.macs_linear += out.numel() * module.in_features
            self.layers += 1


def first_tensor(values):
    """The first tensor in a (nested) tuple or list of values, or None."""
    for value in values:
        if hasattr(value, "numel"):
            return value
        if isinstance(value, list | tuple):
            found = first_tensor(value)
            if found is not None:
                return found
    return None
