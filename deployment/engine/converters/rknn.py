"""RKNN (Rockchip NPUs: rk3566, rk3568, rk3588): `.rknn` files built by rknn-toolkit2 2.3.x on this x86 server.

rknn-toolkit2 pins numpy <= 1.26, onnx 1.18 and an old protobuf, which clash with the portal's, so it lives in its
own environment (tango_common.sideenvs.RKNN, `./tango engines install rknn`) and runs as a subprocess: the ONNX
model (opset <= 19) goes in, the `.rknn` file and a JSON report come out. int8 is calibrated on images of the
project's own dataset; fp16 needs none. Every build is run in the toolkit's x86 simulator on the check images and
its outputs are compared here with the reference (the PyTorch model, or ONNX Runtime on the fp32 model). The file
runs on the board's NPU, not on this server. Django-free.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from tango_common.sideenvs import RKNN, SideEnvError

from .base import (
    Artifact,
    CalibrationSet,
    ConversionError,
    Report,
    Runner,
    Source,
    require_calibration,
    say,
)

WORKER = Path(__file__).resolve().parent / "workers" / "rknn_build.py"
PLATFORMS = ("rk3566", "rk3568", "rk3588")
MAX_OPSET = 19
CALIBRATION_IMAGES = 64
CHECK_IMAGES = 8


def onnx_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def downgrade_opset(path: Path, out: Path) -> Path:
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    onnx.save(version_converter.convert_version(model, MAX_OPSET), str(out))
    return out


def input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in initializers)


def reference_outputs(source: Source, batch: np.ndarray) -> tuple[np.ndarray, str]:
    if source.torch_model is not None:
        import torch

        with torch.no_grad():
            output = source.torch_model(torch.from_numpy(batch))
        output = output[0] if isinstance(output, (list, tuple)) else output
        return output.numpy().reshape(len(batch), -1), source.reference_name
    import onnxruntime as ort

    session = ort.InferenceSession(str(source.onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: batch[i:i + 1]})[0].reshape(1, -1)
                           for i in range(len(batch))]), "ONNX Runtime fp32"


def agreement(got: np.ndarray, want: np.ndarray, task: str) -> dict:
    got, want = got.reshape(len(got), -1), want.reshape(len(want), -1)
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1) + 1e-12)
    out = {"max_abs_diff": float(np.abs(got - want).max()), "min_cosine": float(cosine.min()), "images": len(got)}
    if task == "classification":
        out["top1_agreement"] = float((got.argmax(1) == want.argmax(1)).mean())
    return out


class RknnConverter:
    """options: platform (rk3566 | rk3568 | rk3588, default rk3588), calibration_images (int8; default 64),
    check_images (simulator comparison; default 8)."""

    engine = "rknn"
    label = "RKNN"

    def missing(self) -> str | None:
        why = RKNN.missing()
        return f"RKNN needs {why}" if why else None

    def precisions(self) -> tuple[str, ...]:
        return ()  # nothing runs on this server: the files run on the board's NPU

    def precisions_on_device(self) -> tuple[str, ...]:
        return () if self.missing() else ("fp16", "int8")

    def versions(self) -> dict[str, str]:
        return RKNN.versions()

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        options = dict(options or {})
        platform = options.get("platform", "rk3588")
        if platform not in PLATFORMS:
            raise ConversionError(f"RKNN: unknown platform {platform!r}; known: {', '.join(PLATFORMS)}.")
        if precision not in ("fp16", "int8"):
            raise ConversionError(f"RKNN builds fp16 or int8, not {precision}.")
        if why := self.missing():
            raise ConversionError(why)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"model-rknn-{platform}-{precision}.rknn"
        used_calibration = None
        with tempfile.TemporaryDirectory(prefix="tango-rknn-") as tmp:
            tmp = Path(tmp)
            onnx_path = source.onnx_path
            if (opset := onnx_opset(onnx_path)) > MAX_OPSET:
                onnx_path = downgrade_opset(onnx_path, tmp / "model-opset19.onnx")
                say(report, f"RKNN: the ONNX model's opset {opset} converted to {MAX_OPSET} (rknn-toolkit2's "
                            "newest).")
            files = []
            if precision == "int8":
                calibration = require_calibration(self.engine, precision, calibration)
                calibration = calibration.first(int(options.get("calibration_images", CALIBRATION_IMAGES)))
                for index, array in enumerate(calibration.arrays()):
                    np.save(tmp / f"calib-{index}.npy", array.astype(np.float32))
                    files.append(str(tmp / f"calib-{index}.npy"))
                used_calibration = calibration.describe()
            check = self._check_batch(source, calibration, int(options.get("check_images", CHECK_IMAGES)))
            np.save(tmp / "check.npy", check)
            say(report, f"RKNN {platform} {precision}: building with rknn-toolkit2 in its own environment"
                        + (f", calibrated on {len(files)} images" if files else "") + "…")
            try:
                result = RKNN.run_json(WORKER, {
                    "onnx": str(Path(onnx_path).resolve()), "out": str(path.resolve()), "platform": platform,
                    "precision": precision,
                    "input": input_name(onnx_path), "input_size": source.input_size, "calibration": files,
                    "check": str(tmp / "check.npy"), "check_out": str(tmp / "check-out.npy")}, log=None)
            except SideEnvError as error:
                raise ConversionError(str(error)) from error
            simulated = np.load(tmp / "check-out.npy")
        want, reference = reference_outputs(source, check)
        figures = agreement(simulated, want, source.task)
        say(report, f"RKNN {platform} {precision}: {path.name} built in {result['build_seconds']} s; in the "
                    f"toolkit's simulator against {reference} on {figures['images']} images: max |diff| "
                    f"{figures['max_abs_diff']:.3g}, min cosine {figures['min_cosine']:.4f}"
                    + (f", top-1 agreement {100 * figures['top1_agreement']:.0f}%" if "top1_agreement" in figures
                       else "") + ".")
        artifact = Artifact(
            engine=self.engine, precision=precision, path=path, files=[path], task=source.task,
            input_size=source.input_size, runs_here=False, converter_versions=result["versions"],
            calibration=used_calibration, options={**options, "platform": platform},
            notes=[f"Runs on the {platform}'s NPU (rknn-toolkit-lite2 or the RKNN C API on the board); checked "
                   "here in rknn-toolkit2's x86 simulator."])
        artifact.load_check = {"ran": True, "where": "rknn-toolkit2 x86 simulator", "reference": reference,
                               **figures}
        return artifact

    @staticmethod
    def _check_batch(source: Source, calibration: CalibrationSet | None, count: int) -> np.ndarray:
        if calibration is not None and len(calibration):
            arrays = [a for _, a in zip(range(count), calibration.arrays(), strict=False)]
            return np.concatenate(arrays).astype(np.float32)
        size = source.input_size
        return np.random.default_rng(0).random((count, 3, size, size), dtype=np.float32)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        raise ConversionError(f"{artifact.path.name} runs on the Rockchip board's NPU, not on this server.")
