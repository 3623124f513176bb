"""PyTorch: the trained module as TorchScript (`model.ts`, loads in Python or libtorch without the model's code) or
as an ExportedProgram (`model.pt2`, torch.export). fp32 on this CPU; PyTorch's fp16 pays on GPUs only."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np

from .base import Artifact, CalibrationSet, ConversionError, Report, Runner, Source, module_missing, per_item

FORMATS = ("torchscript", "exported_program")


class PyTorchConverter:
    engine = "pytorch"
    label = "PyTorch"
    runtime_modules = ("torch",)  # what load() imports (benchmark: imported before the memory baseline)

    def missing(self) -> str | None:
        return module_missing("torch")

    def precisions(self) -> tuple[str, ...]:
        return () if self.missing() else ("fp32",)

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        import torch

        options = dict(options or {})
        fmt = options.setdefault("format", "torchscript")
        if fmt not in FORMATS:
            raise ConversionError(f"Unknown PyTorch format {fmt!r}; one of {', '.join(FORMATS)}.")
        if precision != "fp32":
            raise ConversionError("PyTorch artifacts are fp32 on this server.")
        if source.torch_model is None:
            raise ConversionError("The PyTorch engine needs the trained module, not only its ONNX export.")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        model = copy.deepcopy(source.torch_model).cpu().eval()
        example = torch.zeros(1, 3, source.input_size, source.input_size)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python values in the graph
            if fmt == "torchscript":
                path = out_dir / "model.ts"
                torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(path))
            else:
                path = out_dir / "model.pt2"
                torch.export.save(torch.export.export(model, (example,)), str(path))
        return Artifact(engine=self.engine, precision=precision, path=path, files=[path], task=source.task,
                        input_size=source.input_size, converter_versions=self.versions(), options=options)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if artifact.path.suffix == ".pt2":
            module = torch.export.load(str(artifact.path)).module()
        else:
            module = torch.jit.load(str(artifact.path), map_location="cpu").eval()

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            return (out[0] if isinstance(out, (list, tuple)) else out).numpy()

        # An ExportedProgram is specialised to the batch of 1 it was exported with.
        return per_item(run) if artifact.path.suffix == ".pt2" else run
