"""Apache TVM (Relax) through the converter registry: real compilations, run here and compared with PyTorch; a real
cross-compilation for aarch64 boards; a real (tiny) MetaSchedule search. Django-free."""

import json
import os

import numpy as np
import pytest
import torch

from deployment.engine.converters import registry
from deployment.engine.converters.base import ConversionError, Source
from deployment.engine.converters.tvm import TvmConverter, cross_compiler, elf_machine, latency_ms
from deployment.engine.onnx_export import export_onnx
from tango_common.engines import engine_support
from tango_common.images import preprocess_image
from training.engine.train import TrainConfig, train
from training.engine.zoo import build_model

from .conftest import INPUT_SIZE

pytestmark = pytest.mark.skipif(TvmConverter().missing() is not None, reason="apache-tvm is not installed")


@pytest.fixture(scope="module")
def source(dataset, tmp_path_factory):
    """A trained vgg_tiny exported to ONNX, in place of the session's densenet_tiny: TVM makes 13 operator tasks of it
    where densenet_tiny makes 50, so each compilation (and the tuning's task extraction) takes a third of the time;
    what is checked here, TVM's library against PyTorch, does not depend on the network."""
    root, class_names = dataset
    config = TrainConfig(model="vgg_tiny", epochs=2, batch_size=16, input_size=INPUT_SIZE, seed=1)
    result = train(data_dir=root, class_names=class_names, config=config, out_dir=tmp_path_factory.mktemp("vgg"),
                   report=lambda *a, **k: None)
    model = build_model("vgg_tiny", num_classes=len(class_names), input_size=INPUT_SIZE)
    model.load_state_dict(torch.load(result.weights_path, weights_only=True))
    path = export_onnx(model.eval(), input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("vgg-onnx") / "model.onnx")
    return Source(onnx_path=path, task="classification", input_size=INPUT_SIZE, torch_model=model)


@pytest.fixture(scope="module")
def batch(val_images):
    return np.stack([preprocess_image(p, INPUT_SIZE) for p in val_images[:12]])


def agreement(artifact, source, batch):
    got = registry.load(artifact, threads=1)(batch)
    with torch.no_grad():
        want = source.torch_model(torch.from_numpy(batch)).numpy()
    return float(np.abs(got - want).max()), float((got.argmax(1) == want.argmax(1)).mean())


def test_tvm_is_offered_for_fp32_here_and_the_tables_agree():
    assert engine_support("tvm").here == ("fp32",)
    assert registry.support_matches() == {}
    assert registry.offered("tvm") == ("fp32",)


def test_host_build_runs_here_and_matches_pytorch(source, batch, tmp_path):
    lines = []
    artifact = registry.convert("tvm", source, precision="fp32", out_dir=tmp_path, report=lines.append)
    assert artifact.load_check["ran"] and artifact.runs_here
    assert elf_machine(artifact.path) == "x86_64"
    cores = os.sched_getaffinity(0)
    diff, top1 = agreement(artifact, source, batch)
    assert diff < 1e-4 and top1 == 1.0
    assert os.sched_getaffinity(0) == cores  # running it left this process free to use every core it had
    report = artifact.as_dict()
    assert report["status"] == "runs here"
    assert report["converter_versions"]["apache-tvm"].startswith("0.")
    assert json.loads(artifact.path.with_suffix(".json").read_text())["tuned"] is False
    assert any("untuned" in line for line in lines) and any("Untuned" in note for note in report["notes"])
    with pytest.raises(ConversionError, match="fp32"):
        registry.convert("tvm", source, precision="int8", out_dir=tmp_path)


@pytest.mark.skipif(cross_compiler() is None, reason="g++-aarch64-linux-gnu is not installed (./tango engines "
                                                     "install tvm)")
def test_aarch64_build_is_an_arm_library_that_runs_on_the_device(source, tmp_path):
    artifact = registry.convert("tvm", source, precision="fp32", out_dir=tmp_path,
                                options={"target": "aarch64", "mcpu": "cortex-a55"})
    assert elf_machine(artifact.path) == "aarch64"
    assert not artifact.runs_here and artifact.as_dict()["status"] == "runs on device"
    assert "does not run on this server" in artifact.notes[0]
    with pytest.raises(ConversionError, match="device"):
        registry.load(artifact)


def test_metaschedule_tuning_within_a_tiny_budget_keeps_the_outputs(source, batch, tmp_path):
    lines = []
    tuned = registry.convert("tvm", source, precision="fp32", out_dir=tmp_path, report=lines.append,
                             options={"tune_trials": 3, "tune_seconds": 30})
    meta = json.loads(tuned.path.with_suffix(".json").read_text())
    assert meta["tuned"] and meta["tuning"]["measured"] >= 1 and meta["tuning"]["tasks"] >= 1
    assert any("operator tasks" in line for line in lines)
    diff, top1 = agreement(tuned, source, batch)
    assert diff < 1e-4 and top1 == 1.0
    assert latency_ms(registry.load(tuned, threads=1), INPUT_SIZE, repeat=3) > 0
