"""TensorFlow Lite through the converter registry: real .tflite files written by onnx2tf in the TFLite environment,
run by the TFLite interpreter and compared with the PyTorch model they came from; the accuracy guard and the
benchmark use them like any engine. They need that environment (`./tango engines install tflite`, ~2.6 GB):
without it they skip, and the engine says how to install it. Django-free."""

import zipfile

import numpy as np
import pytest
import torch

from deployment.engine import benchmark
from deployment.engine.converters import registry
from deployment.engine.converters.base import ConversionError, Source, calibration_set
from deployment.engine.converters.tflite import TfliteConverter
from deployment.engine.guard import Validation, guarded_convert
from tango_common.engines import engine_support
from tango_common.images import preprocess_image
from tango_common.sideenvs import TFLITE

from .conftest import INPUT_SIZE

needs_env = pytest.mark.skipif(
    not TFLITE.ready(), reason="the TFLite environment is not installed (./tango engines install tflite)"
)


@pytest.fixture(scope="module")
def calibration(dataset):
    root, _ = dataset
    return calibration_set(
        sorted((root / "train").glob("*/*.png"))[:24], split="train", task="classification", input_size=INPUT_SIZE
    )


@pytest.fixture(scope="module")
def batch(val_images):
    return np.stack([preprocess_image(p, INPUT_SIZE) for p in val_images])


@pytest.fixture(scope="module")
def fp32(source, tmp_path_factory):
    return registry.convert("tflite", source, precision="fp32", out_dir=tmp_path_factory.mktemp("tflite"))


def pytorch(source, batch):
    with torch.no_grad():
        return source.torch_model(torch.from_numpy(batch)).numpy()


def test_without_its_environment_tflite_is_unavailable_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path))  # no side environment under this root
    assert "./tango engines install tflite" in TfliteConverter().missing()
    assert engine_support("tflite").built == ()
    assert "./tango engines install tflite" in engine_support("tflite").problem("int8")
    assert registry.support_matches() == {}
    with pytest.raises(ConversionError, match="engines install tflite"):
        registry.convert(
            "tflite",
            Source(onnx_path=tmp_path / "x.onnx", task="classification", input_size=16),
            precision="fp32",
            out_dir=tmp_path,
        )


@needs_env
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_float_tflite_runs_in_the_interpreter_and_matches_pytorch(source, batch, precision, fp32, tmp_path):
    assert engine_support("tflite").here == ("fp32", "fp16", "int8") and registry.support_matches() == {}
    artifact = (
        fp32 if precision == "fp32" else registry.convert("tflite", source, precision=precision, out_dir=tmp_path)
    )
    assert artifact.path.suffix == ".tflite" and artifact.load_check["ran"]
    assert artifact.converter_versions["onnx2tf"] and artifact.converter_versions["tensorflow-cpu"]
    assert artifact.options["interpreter_check"]["reference"] == "the PyTorch model"
    run = registry.load(artifact, threads=1)
    got, want = run(batch), pytorch(source, batch)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < (1e-3 if precision == "fp32" else 5e-2)
    assert (got.argmax(1) == want.argmax(1)).mean() >= (1.0 if precision == "fp32" else 0.9)


@needs_env
def test_int8_tflite_is_calibrated_on_the_projects_images_and_passes_the_guard(
    source, calibration, dataset, val_images, tmp_path
):
    with pytest.raises(ConversionError, match="calibration"):
        registry.convert("tflite", source, precision="int8", out_dir=tmp_path)
    root, classes = dataset
    samples = [(p, classes.index(p.parent.name)) for p in val_images]
    validation = Validation(task="classification", input_size=INPUT_SIZE, samples=samples, num_classes=len(classes))
    reference = validation.evaluate(benchmark.torch_eager_loader(source.torch_model)())
    lines = []
    outcome = guarded_convert(
        "tflite",
        source,
        precision="int8",
        out_dir=tmp_path,
        validation=validation,
        reference=reference,
        calibration=calibration,
        tolerance=5.0,
        report=lines.append,
    )
    assert outcome.attempts[0].precision == "int8" and outcome.attempts[0].metrics is not None
    assert outcome.attempts[0].calibration == {"n_images": 24, "split": "train"}
    assert any(line.startswith("guard: TensorFlow Lite int8") or "tflite int8" in line for line in lines)
    assert outcome.passed  # int8 within 5 points on this tiny model, or the guard's fp16 fallback
    artifact = outcome.artifact
    if artifact.precision == "int8":
        assert artifact.as_dict()["calibration"] == {"n_images": 24, "split": "train"}
        agreement = artifact.options["interpreter_check"]
        assert agreement["min_cosine"] > 0.9


@needs_env
def test_the_benchmark_counts_the_interpreter_process_cpu_time(fp32):
    artifact = fp32
    figures = benchmark.measure(
        lambda: registry.load(artifact, threads=1), input_size=INPUT_SIZE, max_runs=20, max_seconds=2
    )
    runner = registry.load(artifact, threads=1)
    runner(np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32))
    assert runner.child_cpu_seconds() > 0  # the interpreter's own CPU time comes back with each answer
    assert figures["cpu_p10_ms"] > 0 and figures["runs"] >= 10


@needs_env
def test_the_phone_bundle_runs_its_smoke_test_on_the_tflite_interpreter(fp32, trained, val_images, tmp_path):
    from deployment.engine.bundle import Target, build_tier_bundle, check_tier_bundle
    from deployment.engine.measure import torch_runner

    model, class_names = trained
    zip_path = build_tier_bundle(
        out_path=tmp_path / "bundle.zip",
        task="classification",
        tier="on_device",
        runtime="tflite",
        model_files={"model.tflite": fp32.path},
        class_names=class_names,
        input_size=INPUT_SIZE,
        target=Target(name="Galaxy_S22", tier="on_device", accelerator="adreno_gpu", cpu_arch="aarch64"),
        reference=torch_runner(model),
        samples=val_images[::5],
        model_info={"name": "densenet_tiny"},
    )
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        requirements = archive.read("requirements.txt").decode()
        runtime = archive.read("runtime.py").decode()
    assert {"model.tflite", "runtime.py", "infer.py", "smoke_test.py", "SHA256SUMS"} <= names
    assert "ai-edge-litert==" in requirements and "numpy==" in requirements
    assert "ai_edge_litert" in runtime
    check = check_tier_bundle(zip_path, tier="on_device", python=str(TFLITE.interpreter))
    assert check["passed"], check
    assert check["ran"] == ["smoke_test.py"]


class ResNetStem(torch.nn.Module):
    """ResNet's stem (7x7 stride-2 convolution, ReLU, 3x3 stride-2 max-pool padded by 1), one residual block and
    the head. On an even size the pool's padding is not TensorFlow's SAME (one pixel at the end only). relu=False:
    the pool reads the convolution itself (values below 0)."""

    def __init__(self, classes: int, relu: bool = True):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 7, 2, 3), torch.nn.ReLU() if relu else
                                        torch.nn.Identity(), torch.nn.MaxPool2d(3, 2, 1))
        self.block = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, 1, 1), torch.nn.ReLU(),
                                         torch.nn.Conv2d(16, 16, 3, 1, 1))
        self.head = torch.nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(x.mean((2, 3)))


@needs_env
def test_int8_of_an_imported_network_with_resnets_padded_max_pool_runs_in_xnnpack_and_passes_the_guard(
        dataset, val_images, tmp_path):
    # Regression: an imported ResNet-18 at 96 px did not run as int8 ("Node number 39 (TfLiteXNNPackDelegate) failed
    # to prepare") and the guard fell back to fp16. onnx2tf padded the stem's max-pool with float32's lowest value,
    # so int8 calibration gave the ReLU before it the scale 1.3e36. The file now runs in the interpreter (XNNPACK),
    # agrees with the imported model, and is what the guard ships.
    from deployment.engine.converters.base import IMPORTED_REFERENCE
    from deployment.engine.model_import import fold_normalisation_onnx, onnx_module
    from deployment.engine.onnx_export import export_onnx
    from tango_common.images import IMAGENET_MEAN, IMAGENET_STD
    from training.engine.train import TrainConfig, train

    root, classes = dataset
    size = 32  # the stem's output is 16 px: even, as ResNet-18's 48 px at 96
    config = TrainConfig(model="resnet18", epochs=3, batch_size=16, input_size=size, seed=0)
    trained = train(data_dir=root, class_names=classes, config=config, out_dir=tmp_path / "run",
                    report=lambda *a, **k: None, model_factory=lambda n, _size: ResNetStem(n))
    model = ResNetStem(len(classes))
    model.load_state_dict(torch.load(trained.weights_path, weights_only=True))
    # imported as a team would bring it: its own ONNX file, the pipeline's normalisation folded in front
    theirs = export_onnx(model.eval(), input_size=size, path=tmp_path / "theirs.onnx")
    onnx_path = fold_normalisation_onnx(theirs, tmp_path / "imported.onnx", task="classification",
                                        mean=IMAGENET_MEAN, std=IMAGENET_STD)
    source = Source(onnx_path=onnx_path, task="classification", input_size=size, torch_model=onnx_module(onnx_path),
                    reference_name=IMPORTED_REFERENCE)
    calibration = calibration_set(sorted((root / "train").glob("*/*.png")), split="train", task="classification",
                                  input_size=size)
    validation = Validation(task="classification", input_size=size, num_classes=len(classes),
                            samples=[(p, classes.index(p.parent.name)) for p in val_images])
    reference = validation.evaluate(benchmark.torch_eager_loader(source.torch_model)())
    lines = []
    outcome = guarded_convert("tflite", source, precision="int8", out_dir=tmp_path / "guard", validation=validation,
                              reference=reference, calibration=calibration, tolerance=5.0, report=lines.append)
    first = outcome.attempts[0]
    assert first.error is None, first.error
    assert outcome.passed and outcome.fallback is None and outcome.artifact.precision == "int8", outcome.summary()
    assert "within 5 point(s) of the imported model" in outcome.summary()
    check = outcome.artifact.options["interpreter_check"]
    assert check["reference"] == IMPORTED_REFERENCE and check["top1_agreement"] == 1.0 and check["min_cosine"] > 0.99
    batch = np.stack([preprocess_image(p, size) for p in val_images])
    got, want = registry.load(outcome.artifact, threads=1)(batch), source.torch_model(torch.from_numpy(batch)).numpy()
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95


@needs_env
def test_an_int8_file_tflite_cannot_prepare_says_which_op_and_why_and_the_guard_falls_back(
        source, calibration, dataset, val_images, tmp_path):
    # Where the build cannot pad a max-pool with zeros (it reads values below 0), int8 still does not prepare; the
    # attempt said only "Node number 13 (TfLiteXNNPackDelegate) failed to prepare". It now names the op and why.
    from deployment.engine.onnx_export import export_onnx

    root, classes = dataset
    model = ResNetStem(len(classes), relu=False).eval()
    onnx_path = export_onnx(model, input_size=32, path=tmp_path / "model.onnx")
    unpadded = Source(onnx_path=onnx_path, task="classification", input_size=32, torch_model=model)
    validation = Validation(task="classification", input_size=32, num_classes=len(classes),
                            samples=[(p, classes.index(p.parent.name)) for p in val_images])
    calibration = calibration_set(sorted((root / "train").glob("*/*.png")), split="train", task="classification",
                                  input_size=32)
    reference = validation.evaluate(benchmark.torch_eager_loader(model)())
    lines = []
    outcome = guarded_convert("tflite", unpadded, precision="int8", out_dir=tmp_path / "guard", validation=validation,
                              reference=reference, calibration=calibration, tolerance=5.0, report=lines.append)
    error = outcome.attempts[0].error
    assert "failed to prepare" in error and "Its int8 calibration gave op " in error, error
    assert "(PADV2) pads that tensor for op " in error and "(MAX_POOL_2D) with float32's lowest value" in error
    assert any(line.startswith("guard: tflite int8 (as asked) did not convert: ") and "PADV2" in line
               for line in lines), lines
    assert outcome.passed and outcome.artifact.precision == "fp16"
