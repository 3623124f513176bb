"""Peak memory, one measurement for every row (deployment.engine.timing.PeakMemory): the model's load and first run
in a timing process of its own, above that process's resident memory before the load, the runtime's libraries
already imported. The same PyTorch model once read 1.1 MB in one benchmark and 33.7 MB in another: a figure taken in a
process that had run models before reads what its allocator had not kept, and PyTorch eager's weights were resident
before the baseline (unpickled with the loader) while an artifact's file was read after it. Django-free."""


import numpy as np
import pytest
import torch
from torch import nn

from deployment.engine import benchmark
from deployment.engine.converters.base import Source
from deployment.engine.guard import Validation
from deployment.engine.onnx_export import export_onnx

from .conftest import INPUT_SIZE

QUICK = {"min_runs": 5, "max_runs": 10, "max_seconds": 0.2, "warmup": 2}
WEIGHT_MB = 16.0  # the Wide model's weights: large enough to stand out of the process's own noise
WEIGHT_MIB = WEIGHT_MB * 1e6 / 2**20 * 0.99  # as the figure counts (MiB), less the rounding of the layer's width
# Loading holds a transient copy (torch.load reads each record before it fills the storage; ONNX Runtime keeps the
# model's proto while it builds its initializers and prepacks them): the peak is more than the weights, not 5x them.
MOST = 5 * WEIGHT_MIB


class Wide(nn.Module):
    """16 MB of weights on a 16x16 image (picklable: a module-level class)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * INPUT_SIZE * INPUT_SIZE, int(WEIGHT_MB * 1e6 / 4 / (3 * INPUT_SIZE * INPUT_SIZE)))
        self.head = nn.Linear(self.fc.out_features, 3)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x.flatten(1))))


@pytest.fixture(scope="module")
def wide():
    torch.manual_seed(0)
    return Wide().eval()


def test_two_measurements_of_one_model_agree_and_count_its_weights(wide):
    first = benchmark.measure(benchmark.torch_eager_loader(wide), input_size=INPUT_SIZE, **QUICK)
    again = benchmark.measure(benchmark.torch_eager_loader(wide), input_size=INPUT_SIZE,
                              reference=benchmark.torch_eager_loader(wide), **QUICK)
    assert first["isolated"] and again["isolated"]
    # the weights are part of it (loaded after the baseline), the reference beside it is not (loaded after the reading)
    assert WEIGHT_MIB <= first["peak_memory_mb"] < MOST
    assert again["peak_memory_mb"] == pytest.approx(first["peak_memory_mb"], abs=max(2.0, 0.1 * WEIGHT_MIB))


def test_an_artifact_and_pytorch_eager_read_their_weights_alike(wide, tmp_path):
    from deployment.engine.converters import registry

    onnx = export_onnx(wide, input_size=INPUT_SIZE, path=tmp_path / "wide.onnx")
    artifact = registry.convert("onnxruntime", Source(onnx_path=onnx, task="classification", input_size=INPUT_SIZE,
                                                      torch_model=wide), precision="fp32", out_dir=tmp_path / "ort")
    ort = benchmark.measure(benchmark.ArtifactLoader(artifact), input_size=INPUT_SIZE, **QUICK)
    eager = benchmark.measure(benchmark.torch_eager_loader(wide), input_size=INPUT_SIZE, **QUICK)
    # both count the same 16 MB of weights (eager's were resident before its baseline, unpickled with the loader),
    # and neither runtime's libraries (ONNX Runtime's were imported after the baseline)
    for figures in (ort, eager):
        assert WEIGHT_MIB <= figures["peak_memory_mb"] < MOST, figures


class Counting:
    """A loader that counts its loads (a local class's instances cannot be sent to a timing process)."""

    def __init__(self, model):
        self.model, self.loads = model, 0

    def __call__(self):
        self.loads += 1
        return benchmark.torch_eager_loader(self.model)()


def test_a_model_timed_in_the_callers_process_is_loaded_once_and_has_no_peak_memory(wide, dataset):
    root, class_names = dataset
    samples = [(p, class_names.index(p.parent.name)) for p in sorted((root / "val").glob("*/*.png"))[:6]]
    validation = Validation(task="classification", input_size=INPUT_SIZE, samples=samples, num_classes=3)
    load = Counting(wide)
    load.unsendable = lambda: None  # a lambda: the loader does not pickle, so it is timed here
    figures = benchmark.measure(load, input_size=INPUT_SIZE, validation=validation, **QUICK)
    assert figures["isolated"] is False and load.loads == 1  # timed and scored on the same runner
    assert figures["accuracy"]["n_images"] == 6 and np.isfinite(figures["accuracy"]["top1"])
    # a process that ran models before keeps their freed pages: its reading would say anything from 0 up
    assert figures["peak_memory_mb"] is None
