"""TensorRT: the engine is built where TensorRT is. This server cannot install it (see DEPENDENCIES.md), so the
artifact is a build kit, a folder whose model.onnx is the artifact's path: the verified ONNX, trt_build.py (build +
benchmark through TensorRT's Python API), a trtexec script, the int8 calibration images and a README; it says
"builds on device". On a gpu worker whose image ships `tensorrt`, the same trt_build.py builds the fp16/int8 engine
here and the artifact runs here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .base import Artifact, CalibrationSet, ConversionError, Report, Runner, Source, say

BUILD_SCRIPT = Path(__file__).with_name("trt_build.py")
KIT_CALIBRATION_IMAGES = 64

TRTEXEC = """#!/bin/sh
# Build and time the TensorRT engine with trtexec (JetPack: /usr/src/tensorrt/bin/trtexec).
set -e
cd "$(dirname "$0")"
PRECISION="${{1:-{precision}}}"
FLAGS=""
[ "$PRECISION" = fp16 ] && FLAGS="--fp16"
# trtexec calibrates int8 only from a cache: build int8 with `python3 trt_build.py --precision int8` instead.
[ "$PRECISION" = int8 ] && exec python3 trt_build.py --precision int8
trtexec --onnx=model.onnx --saveEngine="model-$PRECISION.engine" $FLAGS \\
  --shapes={input}:1x3x{size}x{size} --warmUp=500 --iterations=200 --percentile=50,90,99
"""

README = """TensorRT build kit ({precision}) made by TANGO
=============================================

TensorRT engines are specific to the GPU and TensorRT version that build them, so this kit is built on the
device (Jetson: JetPack ships TensorRT and trtexec).

  python3 trt_build.py --precision {precision}     # builds model-{precision}.engine, prints latency p50/p90/p99
  sh build_trtexec.sh {precision}                   # the same with trtexec (fp32/fp16)

model.onnx is the model TANGO verified against PyTorch (input "{input}", 1x3x{size}x{size}).
calibration.npz holds {n_calib} images of the project's {split} split for int8 calibration.
"""


def tensorrt_here() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


class TensorRtConverter:
    engine = "tensorrt"
    label = "TensorRT"

    def missing(self) -> str | None:
        return None  # a kit can always be made; whether it runs here is precisions()

    def precisions(self) -> tuple[str, ...]:
        return ("fp32", "fp16", "int8") if tensorrt_here() else ()

    def precisions_on_device(self) -> tuple[str, ...]:
        return () if tensorrt_here() else ("fp32", "fp16", "int8")

    def versions(self) -> dict[str, str]:
        import onnx

        versions = {"onnx": onnx.__version__}
        if tensorrt_here():
            import tensorrt

            versions["tensorrt"] = tensorrt.__version__
        return versions

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        import onnx

        options = dict(options or {})
        if precision not in ("fp32", "fp16", "int8"):
            raise ConversionError(f"TensorRT does not offer {precision}.")
        if precision == "int8" and (calibration is None or not len(calibration)):
            raise ConversionError("TensorRT int8 needs calibration images from the project's dataset.")
        out_dir = Path(out_dir) / f"tensorrt-{precision}"
        out_dir.mkdir(parents=True, exist_ok=True)
        input_name = onnx.load(str(source.onnx_path), load_external_data=False).graph.input[0].name
        shutil.copyfile(source.onnx_path, out_dir / "model.onnx")
        shutil.copyfile(BUILD_SCRIPT, out_dir / "trt_build.py")
        used = None
        if calibration is not None and len(calibration):
            calibration = calibration.first(KIT_CALIBRATION_IMAGES)
            _write_calibration(out_dir / "calibration.npz", calibration, source.task)
            used = calibration.describe()
        (out_dir / "kit.json").write_text(json.dumps({"input_size": source.input_size, "input": input_name,
                                                      "precision": precision, "task": source.task}) + "\n")
        (out_dir / "build_trtexec.sh").write_text(TRTEXEC.format(precision=precision, input=input_name,
                                                                 size=source.input_size))
        (out_dir / "README.txt").write_text(README.format(precision=precision, input=input_name,
                                                          size=source.input_size, n_calib=used["n_images"] if used
                                                          else 0, split=used["split"] if used else "-"))
        versions = self.versions()
        if tensorrt_here():
            engine = out_dir / f"model-{precision}.engine"
            say(report, f"TensorRT {versions['tensorrt']} imports here: building the {precision} engine.")
            done = subprocess.run([sys.executable, str(out_dir / "trt_build.py"), "--precision", precision,
                                   "--engine", str(engine), "--no-benchmark"], capture_output=True, text=True,
                                  timeout=3600)
            if done.returncode != 0:
                raise ConversionError(f"TensorRT build failed: {done.stderr.strip()[-500:]}")
            return Artifact(engine=self.engine, precision=precision, path=engine, files=[engine], task=source.task,
                            input_size=source.input_size, converter_versions=versions, calibration=used,
                            options=options)
        files = sorted(out_dir.iterdir(), key=lambda p: (p.name != "model.onnx", p.name))
        say(report, f"TensorRT {precision}: not installable on this server; the kit (ONNX, trt_build.py, trtexec "
                    "script" + (", calibration images" if used else "") + ") builds the engine on the device.")
        return Artifact(engine=self.engine, precision=precision, path=out_dir / "model.onnx", files=files,
                        task=source.task, input_size=source.input_size, runs_here=False, builds_on_device=True,
                        converter_versions=versions, calibration=used, options=options,
                        notes=["on the device, python3 trt_build.py --precision " + precision + " makes the engine"])

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        if not artifact.runs_here:
            raise ConversionError("This TensorRT kit builds on the device.")
        spec = importlib.util.spec_from_file_location("tango_trt_build", BUILD_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.Runner(artifact.path)


def _write_calibration(path: Path, calibration: CalibrationSet, task: str) -> None:
    """uint8 pixels (exact for letterboxed images; within rounding for normalised ones) and the normalisation."""
    from tango_common.images import IMAGENET_MEAN, IMAGENET_STD

    mean, std = (np.zeros(3), np.ones(3)) if task == "detection" else (np.array(IMAGENET_MEAN),
                                                                         np.array(IMAGENET_STD))
    arrays = np.concatenate(list(calibration.arrays()))
    pixels = np.clip(np.rint((arrays * std[None, :, None, None] + mean[None, :, None, None]) * 255), 0, 255)
    np.savez_compressed(path, pixels=pixels.astype(np.uint8), mean=mean.astype(np.float32),
                        std=std.astype(np.float32))
