"""TensorFlow Lite (LiteRT) for the phone targets (Galaxy S22 and the like): `.tflite` files in fp32, fp16 (weights
in half; the phone's GPU delegate computes in half) and int8 (int8 weights and activations, float32 input and
output), calibrated on images of the project's own dataset.

The converter is onnx2tf (maintained, the one Ultralytics' own TFLite export uses) on TensorFlow 2.19. TensorFlow's
pins clash with the portal's (numpy, protobuf, onnx), so it lives in its own environment
(tango_common.sideenvs.TFLITE, `./tango engines install tflite`) and runs as a subprocess: the ONNX model goes in,
the `.tflite` file and a JSON report come out. onnx2tf reporting success is not taken on trust (a known failure of
TFLite exports is a file written while the conversion went wrong): the file is opened by the TFLite interpreter,
run on check images and compared here with the PyTorch model before it is reported.

The TFLite interpreter runs here too (in that environment), so every artifact goes through the accuracy guard and
the benchmark like the in-process engines: `load()` starts a small server process (workers/tflite_serve.py) and
talks to it through a pipe; the runner reports the server's CPU time so the benchmark's CPU figure is the
interpreter's work, not the portal's wait. The file's input is NHWC (onnx2tf's layout); the runner takes the
portal's NCHW batches and transposes them. Classification and detection (YOLO) models both convert: the build
fixes the graph at batch 1 and folds its shape arithmetic before onnx2tf sees it (workers/tflite_build.py says
why). Django-free.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

from tango_common.sideenvs import TFLITE, SideEnvError

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
from .rknn import agreement, input_name, reference_outputs

WORKERS = Path(__file__).resolve().parent / "workers"
BUILD, SERVE = WORKERS / "tflite_build.py", WORKERS / "tflite_serve.py"
CALIBRATION_IMAGES = 64
CHECK_IMAGES = 8
FILE_SUFFIX = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


class TfliteConverter:
    """options: calibration_images (int8; default 64), check_images (interpreter vs PyTorch; default 8),
    head_in_float (int8 of a detector: the head's ops stay float32; the accuracy guard's first fallback)."""

    engine = "tflite"
    label = "TensorFlow Lite"

    def missing(self) -> str | None:
        why = TFLITE.missing()
        return f"TensorFlow Lite needs {why}" if why else None

    def precisions(self) -> tuple[str, ...]:
        return () if self.missing() else ("fp32", "fp16", "int8")

    def versions(self) -> dict[str, str]:
        return TFLITE.versions()

    def convert(
        self,
        source: Source,
        *,
        precision: str,
        out_dir: Path,
        calibration: CalibrationSet | None = None,
        options: dict | None = None,
        report: Report | None = None,
    ) -> Artifact:
        options = dict(options or {})
        if precision not in FILE_SUFFIX:
            raise ConversionError(f"TensorFlow Lite builds fp32, fp16 or int8, not {precision}.")
        if why := self.missing():
            raise ConversionError(why)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"model-tflite-{FILE_SUFFIX[precision]}.tflite"
        used_calibration = None
        with tempfile.TemporaryDirectory(prefix="tango-tflite-") as tmp:
            tmp = Path(tmp)
            job = {
                "onnx": str(Path(source.onnx_path).resolve()),
                "out": str(path.resolve()),
                "precision": precision,
                "input": input_name(source.onnx_path),
                "input_size": source.input_size,
                "check": str(tmp / "check.npy"),
                "check_out": str(tmp / "check-out.npy"),
            }
            if precision == "int8":
                calibration = require_calibration(self.engine, precision, calibration)
                calibration = calibration.first(int(options.get("calibration_images", CALIBRATION_IMAGES)))
                # onnx2tf calibrates on NHWC arrays; ours are already normalised (mean 0, std 1 in its terms)
                arrays = np.concatenate(list(calibration.arrays())).astype(np.float32).transpose(0, 2, 3, 1)
                np.save(tmp / "calibration.npy", np.ascontiguousarray(arrays))
                job["calibration"] = str(tmp / "calibration.npy")
                job["head_in_float"] = bool(options.get("head_in_float")) and source.task == "detection"
                used_calibration = calibration.describe()
            check = _check_batch(source, calibration, int(options.get("check_images", CHECK_IMAGES)))
            np.save(tmp / "check.npy", check)
            say(
                report,
                f"TensorFlow Lite {precision}: converting with onnx2tf in its own environment"
                + (f", int8 calibrated on {len(calibration)} {calibration.split} images" if used_calibration else "")
                + "…",
            )
            try:
                result = _builder_for(job["onnx"]).run(job, tmp)
            except SideEnvError as error:
                raise ConversionError(str(error)) from error
            checked = np.load(tmp / "check-out.npy")
        want, reference = reference_outputs(source, check)
        figures = agreement(_channels_first(checked), want, source.task)  # want: flattened per image
        say(
            report,
            f"TensorFlow Lite {precision}: {path.name} written in {result['build_seconds']} s; the TFLite "
            f"interpreter against {reference} on {figures['images']} images: max |diff| "
            f"{figures['max_abs_diff']:.3g}, min cosine {figures['min_cosine']:.4f}"
            + (f", top-1 agreement {100 * figures['top1_agreement']:.0f}%" if "top1_agreement" in figures else "")
            + ".",
        )
        if not np.isfinite(checked).all():
            raise ConversionError(
                f"TensorFlow Lite {precision}: onnx2tf wrote {path.name} but its outputs are not finite."
            )
        options.update(
            layout="NHWC input (onnx2tf); the runner transposes NCHW batches", input_shape=result["input_shape"]
        )
        if precision == "int8":
            options.setdefault(
                "method",
                "onnx2tf full integer quantisation (per-channel int8 weights, int8 "
                "activations), float32 input and output",
            )
            if result.get("kept_float"):
                options["kept_float"] = result["kept_float"]  # how many of the head's tensors stayed float32
                options["method"] += "; the detection head in float32"
        notes = [
            "Runs with the TFLite interpreter (LiteRT) on the phone's CPU, or its GPU/NNAPI delegates; "
            "checked here with the same interpreter on x86."
        ]
        artifact = Artifact(
            engine=self.engine,
            precision=precision,
            path=path,
            files=[path],
            task=source.task,
            input_size=source.input_size,
            converter_versions=result["versions"],
            calibration=used_calibration,
            options=options,
            notes=notes,
        )
        artifact.options["interpreter_check"] = {"reference": reference, **figures}
        return artifact

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        return TfliteRunner(artifact.path, threads=threads or 1)


BUILDER_IDLE_SECONDS = 600  # a builder (TensorFlow with onnx2tf's model, ~1-2 GB) unused this long is stopped
_BUILDER: dict = {}
_BUILDER_LOCK = threading.Lock()


class _Builder:
    """workers/tflite_build.py --serve on one ONNX file: onnx2tf converts it once (its first job) and every job
    after that — the accuracy guard's fallbacks, the other precisions — only runs TFLite's converter on the model it
    kept. One builder at a time (the last ONNX file converted); stopped after BUILDER_IDLE_SECONDS unused."""

    def __init__(self, onnx: str, key: tuple):
        self.key = key
        self._log = tempfile.NamedTemporaryFile(prefix="tango-tflite-build-", suffix=".log")
        self._process = subprocess.Popen(
            [str(TFLITE.interpreter), str(BUILD), "--serve", onnx], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=TFLITE.environ(), text=True)
        self._finalizer = weakref.finalize(self, _stop, self._process)
        self._timer: threading.Timer | None = None

    def alive(self) -> bool:
        return self._process.poll() is None

    def run(self, job: dict, tmp: Path, *, timeout: float = 1800) -> dict:
        import select

        if self._timer is not None:
            self._timer.cancel()
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        try:
            self._process.stdin.write(f"{job_file}\n")
            self._process.stdin.flush()
            ready, _, _ = select.select([self._process.stdout], [], [], timeout)
            line = self._process.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.close()
            raise SideEnvError("TensorFlow Lite builder " + ("timed out" if not ready else "ended") + ": "
                               + self._tail())
        result = json.loads(line)
        self._timer = threading.Timer(BUILDER_IDLE_SECONDS, _release, args=(self,))
        self._timer.daemon = True
        self._timer.start()
        if "error" in result:
            raise SideEnvError(f"tflite worker failed: {result['error']}"[:1500])
        return result

    def _tail(self) -> str:
        try:
            return Path(self._log.name).read_text(errors="replace").strip().splitlines()[-1][:600]
        except (OSError, IndexError):
            return "no output"

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._finalizer()
        self._log.close()


def _builder_for(onnx: str) -> _Builder:
    path = Path(onnx)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _BUILDER_LOCK:
        current = _BUILDER.get("current")
        if current is not None and current.key == key and current.alive():
            return current
        if current is not None:
            current.close()
        _BUILDER["current"] = _Builder(onnx, key)
        return _BUILDER["current"]


def _release(builder: _Builder) -> None:
    with _BUILDER_LOCK:
        if _BUILDER.get("current") is builder:
            del _BUILDER["current"]
    builder.close()


def release_builder() -> None:
    """Stop the kept builder now (tests, and callers done with a model)."""
    with _BUILDER_LOCK:
        current = _BUILDER.pop("current", None)
    if current is not None:
        current.close()


def _check_batch(source: Source, calibration: CalibrationSet | None, count: int) -> np.ndarray:
    if calibration is not None and len(calibration):
        return np.concatenate([a for _, a in zip(range(count), calibration.arrays(), strict=False)]).astype(np.float32)
    size = source.input_size
    return np.random.default_rng(0).random((count, 3, size, size), dtype=np.float32)


class TfliteRunner:
    """A Runner backed by the TFLite interpreter in the side environment (workers/tflite_serve.py), through a
    pipe. `child_cpu_seconds()` is the server's CPU time spent on requests so far (the benchmark adds it)."""

    def __init__(self, path: Path, *, threads: int = 1):
        if not TFLITE.ready():
            raise ConversionError(f"TensorFlow Lite needs {TFLITE.missing()}")
        self._process = subprocess.Popen(
            [str(TFLITE.interpreter), str(SERVE), str(path), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=TFLITE.environ(),
        )
        self._finalizer = weakref.finalize(self, _stop, self._process)
        self._lock = threading.Lock()
        self._cpu = 0.0
        hello = json.loads(self._process.stdout.readline() or b'{"error": "the TFLite server did not start"}')
        if "error" in hello:
            self.close()
            raise ConversionError(f"TensorFlow Lite: {path.name} does not load: {hello['error']}")
        self.input_shape = hello["input_shape"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            self._process.stdin.write((json.dumps({"shape": list(batch.shape)}) + "\n").encode())
            self._process.stdin.write(batch.tobytes())
            self._process.stdin.flush()
            header = self._process.stdout.readline()
            if not header:
                raise ConversionError("TensorFlow Lite: the interpreter process ended while running the model.")
            answer = json.loads(header)
            data = self._process.stdout.read(4 * int(np.prod(answer["shape"])))
            self._cpu += answer["cpu_s"]
        output = np.frombuffer(data, dtype=np.float32).reshape(answer["shape"])
        return _channels_first(output)

    def child_cpu_seconds(self) -> float:
        return self._cpu

    def close(self) -> None:
        self._finalizer()


def _channels_first(output: np.ndarray) -> np.ndarray:
    """A detector's (N, anchors, 4 + classes) back to the portal's (N, 4 + classes, anchors); others as they are."""
    if output.ndim == 3 and output.shape[1] > output.shape[2]:
        return output.transpose(0, 2, 1)
    return output


def _stop(process: subprocess.Popen) -> None:
    try:
        process.stdin.close()
        process.wait(timeout=10)
    except Exception:  # noqa: BLE001 - a server that does not end on EOF is killed
        process.kill()
