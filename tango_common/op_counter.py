"""Forward hooks that add up a network's MACs, activations and largest live set of tensors.

One counter for the recommender's cost profile of a whole model and for the visualiser's row-by-row profile of a
detector (whose sum must equal the whole model's): both read the same figures the same way. KernelCounter sees
the same pass from PyTorch's dispatcher, as the kernels a runtime executes (functional ops too: concatenations,
residual adds), for the latency model.
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


# --- kernels, as a runtime executes them ------------------------------------------------------------------------

# Aten ops that move no data in an inference runtime (views, reshapes) or only build constants.
_FREE = {"view", "reshape", "_unsafe_view", "t", "transpose", "permute", "expand", "detach", "alias", "split",
         "split_with_sizes", "slice", "select", "unsqueeze", "squeeze", "flatten", "clone", "empty", "zeros",
         "new_zeros", "zeros_like", "ones_like", "empty_like", "_to_copy", "lift_fresh", "contiguous", "arange",
         "chunk", "unbind", "as_strided", "fill_", "copy_", "detach_", "full", "ones", "new_empty", "scalar_tensor",
         "dropout", "native_dropout"}
# What an inference runtime folds into the convolution before it (ONNX export folds BatchNorm into the weights;
# ONNX Runtime, OpenVINO and TensorRT fuse a ReLU-like activation and a residual add into the convolution).
_FUSABLE = {"native_batch_norm", "_native_batch_norm_legit_no_training", "batch_norm", "relu", "relu_", "leaky_relu",
            "leaky_relu_", "hardtanh", "hardtanh_", "add", "add_"}
_GEMM = {"addmm", "mm", "bmm", "matmul", "linear", "baddbmm"}
# Element-wise functions that cost arithmetic (an exponential) rather than only memory traffic.
_TRANSCENDENTAL = {"silu", "silu_", "sigmoid", "sigmoid_", "gelu", "tanh", "tanh_", "_softmax", "softmax", "exp",
                   "hardswish", "hardswish_", "mish", "elu"}


class KernelCounter:
    """The kernels a runtime executes for one forward pass, read from PyTorch's dispatcher (works on the meta
    device): the latency model's per-kernel view (recommender.engine.latency).

        with KernelCounter() as kernels:
            model(example)
        kernels.profile()

    Every convolution (its FLOPs, activation bytes read and written, weight bytes; identical ones merged with a
    count), the bytes that matrix products and memory-bound kernels (norms, pooling, concatenation, resizing, adds)
    move, the values transcendental activations compute, how many kernels run, and how many operations the
    runtime fuses into the convolution before them (counted, not costed). Bytes at FP32.
    """

    def __init__(self):
        self.convs: dict[tuple, int] = {}
        self.gemm_bytes = self.memory_bytes = self.transcendental_values = 0.0
        self.kernels = self.fused = 0
        self._producer: dict[int, str] = {}  # id(tensor) -> "conv" when a convolution (and what it fuses) wrote it
        self._alive: list = []  # keeps tensors alive, so their ids are not reused while the pass runs
        self._mode = None

    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                counter._see(func.overloadpacket.__name__, args, out)
                return out

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)
        self._alive.clear()
        self._producer.clear()

    def _see(self, name: str, args, out) -> None:
        result = first_tensor((out,))
        if result is None:
            return
        inputs = [a for a in args if hasattr(a, "numel")] + [
            t for a in args if isinstance(a, list | tuple) for t in a if hasattr(t, "numel")]
        self._alive.append(result)
        source = self._producer.get(id(inputs[0])) if inputs else None
        if name in _FREE:
            if source:
                self._producer[id(result)] = source
            return
        if name in _FUSABLE and source == "conv":
            self.fused += 1
            self._producer[id(result)] = "conv"
            return
        self.kernels += 1
        self._producer[id(result)] = "conv" if name == "convolution" else name
        if name == "convolution":
            x, weight = args[0], args[1]
            key = (2.0 * result.numel() * weight[0].numel(), 4.0 * (x.numel() + result.numel()), 4.0 * weight.numel())
            self.convs[key] = self.convs.get(key, 0) + 1
        elif name in _GEMM:
            self.gemm_bytes += 4.0 * (sum(t.numel() for t in inputs) + result.numel())
        elif name in _TRANSCENDENTAL:
            self.transcendental_values += result.numel()
            self.memory_bytes += 4.0 * (sum(t.numel() for t in inputs) + result.numel())
        elif name == "cat":
            self.memory_bytes += 8.0 * result.numel()  # read once, written once
        else:
            self.memory_bytes += 4.0 * (sum(t.numel() for t in inputs) + result.numel())

    def profile(self) -> dict:
        return {"conv": [[*key, count] for key, count in sorted(self.convs.items())], "gemm_bytes": self.gemm_bytes,
                "memory_bytes": self.memory_bytes, "transcendental_values": self.transcendental_values,
                "kernels": self.kernels, "fused": self.fused}
