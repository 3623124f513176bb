"""The converter interface: a verified fp32 ONNX model (and the PyTorch module, for the PyTorch engine) in, one
artifact and its report out. Django-free; every engine module implements `Converter`, registry.py lists them.

An artifact is only ever reported after it was loaded by its own runtime and run once (`load_check`); one that
builds on the device (TensorRT where `tensorrt` does not import) says so and carries what the device needs.

    source = Source(onnx_path=..., task="classification", input_size=224, torch_model=model)
    calibration = calibration_set(images, split="train", task="classification", input_size=224)
    artifact = registry.convert("openvino", source, precision="int8", out_dir=..., calibration=calibration)
    run = registry.load(artifact)          # batch (N, 3, S, S) float32 -> first output as numpy
    artifact.as_dict()                      # what Artifact.checks["conversion"] stores
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Report = Callable[..., None]
Runner = Callable[[np.ndarray], np.ndarray]

CLASSIFICATION, DETECTION = "classification", "detection"
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# What a converted model is held to, in words: the log, the guard's summary, the page and the bundle's smoke test
# all say it (deployment.imports.reference_name picks one for a project's model).
TRAINED_REFERENCE, IMPORTED_REFERENCE = "the PyTorch model", "the imported model"


class ConversionError(RuntimeError):
    """A conversion that did not produce a runnable artifact; the message says why, for the log and the page."""


class EngineMissing(ConversionError):
    """The engine's converter or runtime is not installed on this host."""


@dataclass(frozen=True)
class Source:
    """What every converter starts from. `onnx_path` is the verified fp32 ONNX (input "images", N x 3 x S x S);
    `torch_model` (eval mode, CPU) only the PyTorch engine needs; `reference_name` names it in the converters' checks
    (an imported model's torch_model is that model behind ONNX Runtime, not a PyTorch one)."""

    onnx_path: Path
    task: str
    input_size: int
    torch_model: Any = None
    reference_name: str = TRAINED_REFERENCE

    def __post_init__(self):
        if self.task not in (CLASSIFICATION, DETECTION):
            raise ValueError(f"Unknown task {self.task!r}.")


def preprocess_for(task: str, input_size: int) -> Callable[[Path], np.ndarray]:
    """image path -> (3, S, S) float32, exactly as the model was trained: normalised squares for classification,
    a letterbox in [0, 1] for detection."""
    if task == DETECTION:
        from ..detect_infer import letterbox

        return lambda path: letterbox(path, input_size)[0]
    from tango_common.images import preprocess_image

    return lambda path: preprocess_image(path, input_size)


@dataclass(frozen=True)
class CalibrationSet:
    """Images of the project's own dataset that static int8 calibration reads, and where they came from."""

    images: tuple[Path, ...]
    split: str
    preprocess: Callable[[Path], np.ndarray]

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self) -> Iterator[np.ndarray]:
        """One (1, 3, S, S) float32 batch per image."""
        for path in self.images:
            yield self.preprocess(path)[None]

    def first(self, n: int) -> CalibrationSet:
        return CalibrationSet(tuple(self.images[:n]), self.split, self.preprocess)

    def describe(self) -> dict:
        return {"n_images": len(self.images), "split": self.split}


def calibration_set(images: Sequence[Path], *, split: str, task: str, input_size: int) -> CalibrationSet:
    return CalibrationSet(tuple(Path(p) for p in images), split, preprocess_for(task, input_size))


@dataclass
class Artifact:
    """One converted model and its report. `path` is the file a runtime opens (OpenVINO: the .xml beside its
    .bin; TensorRT on a host without it: the build kit); `files` are all the files that make it up."""

    engine: str
    precision: str
    path: Path
    files: list[Path]
    task: str
    input_size: int
    runs_here: bool = True
    builds_on_device: bool = False
    converter_versions: dict[str, str] = field(default_factory=dict)
    calibration: dict | None = None
    options: dict = field(default_factory=dict)  # what the converter was told: kept-float layers, runtime hints…
    notes: list[str] = field(default_factory=list)
    load_check: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"

    @property
    def status(self) -> str:
        """Where it runs, in words. A file built here that only the device runs (RKNN, TVM for aarch64) is not a
        build kit: the log and the guard called it "builds on device", telling users the .rknn they had was still
        to be made (the RKNN and TVM artifacts' own as_dict already said "runs on device")."""
        if self.builds_on_device:
            return "builds on device"
        return "runs here" if self.runs_here else "runs on device"

    def as_dict(self) -> dict:
        return {
            "engine": self.engine, "precision": self.precision, "task": self.task, "input_size": self.input_size,
            "file": self.path.name, "files": [p.name for p in self.files], "size_bytes": self.size_bytes,
            "runs_here": self.runs_here, "builds_on_device": self.builds_on_device,
            "status": self.status,
            "converter_versions": dict(self.converter_versions),
            "calibration": self.calibration, "options": _jsonable(self.options), "notes": list(self.notes),
            "load_check": dict(self.load_check),
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


class Converter(Protocol):
    """One engine. `missing()` says why it cannot convert on this host (None when it can); `precisions()` are
    those it offers here; `convert` writes the artifact under out_dir; `load` opens it for inference here. An engine
    that runs here may name `runtime_modules`, the modules its `load` imports (the benchmark imports them before its
    memory baseline)."""

    engine: str
    label: str

    def missing(self) -> str | None: ...

    def precisions(self) -> tuple[str, ...]: ...

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact: ...

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner: ...


def first_output(output) -> np.ndarray:
    if isinstance(output, dict):
        output = next(iter(output.values()))
    if isinstance(output, (list, tuple)):
        output = output[0]
    return np.asarray(output)


def per_item(run_one: Runner) -> Runner:
    """A runner for batches built from one compiled for batch 1 (static shapes run fastest on some engines)."""

    def run(batch: np.ndarray) -> np.ndarray:
        if len(batch) == 1:
            return run_one(batch)
        return np.concatenate([run_one(batch[i:i + 1]) for i in range(len(batch))])

    return run


def run_once(artifact: Artifact, runner: Runner, example: np.ndarray) -> dict:
    """Load-and-run-once: the check every artifact passes before it is reported."""
    started = time.perf_counter()
    try:
        output = first_output(runner(example))
    except Exception as error:  # any runtime's failure to run is the conversion's failure
        raise ConversionError(f"{artifact.label}: the artifact was written but does not run: "
                              f"{type(error).__name__}: {str(error)[:300]}") from error
    if not np.isfinite(output).all():
        raise ConversionError(f"{artifact.label}: the artifact runs but its output is not finite.")
    return {"ran": True, "output_shape": list(output.shape), "first_run_ms": round(1000 * (time.perf_counter()
                                                                                               - started), 2)}


def example_input(source: Source, calibration: CalibrationSet | None = None) -> np.ndarray:
    if calibration is not None and len(calibration):
        return next(calibration.arrays())
    return np.random.default_rng(0).random((1, 3, source.input_size, source.input_size), dtype=np.float32)


def require_calibration(engine: str, precision: str, calibration: CalibrationSet | None) -> CalibrationSet:
    if calibration is None or not len(calibration):
        raise ConversionError(f"{engine} {precision} needs calibration images from the project's dataset; none "
                              "were given.")
    return calibration


def say(report: Report | None, line: str) -> None:
    if report is not None:
        report(line)


def module_missing(module: str) -> str | None:
    """Why a converter cannot run here when its Python package is absent, or None."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return f"{module} is not installed on this server."
    return None
