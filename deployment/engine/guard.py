"""The accuracy guard: no artifact that silently lost its accuracy is ever shipped. Django-free.

Each artifact that runs on this host is evaluated on the validation split with the training metric (top-1; mAP50
and mAP50-95 for detection) against the PyTorch model. A drop over the tolerance (points, default 1) fails it and
the conversion falls back by itself, step by step, until one passes:

    int8:       as asked -> detection decode kept in float -> (OpenVINO on a bf16 CPU: the layers left in float
                computed in f32 instead of bf16) -> detection head kept in float -> the most sensitive layers kept
                in float (the engine tells which: ONNX Runtime's QDQ debugger, NNCF's accuracy control) -> more
                calibration images -> fp16 (fp32 where the engine has no fp16 here)
    fp16/bf16:  as asked -> fp32

Every attempt is logged and kept in the outcome (what was tried, its metric, its drop), for the log and the page.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .converters import registry
from .converters.base import (
    DETECTION,
    TRAINED_REFERENCE,
    Artifact,
    CalibrationSet,
    ConversionError,
    Report,
    Runner,
    Source,
    say,
)

DEFAULT_TOLERANCE = 1.0  # points of top-1 / mAP
SENSITIVE_LAYERS = 4
DECODE_IN_FLOAT = ("onnxruntime", "openvino")  # converters that keep a detector's decode alone in float
# converters whose int8 models run their float remainder in bf16 where the engine offers that precision here
BF16_REMAINDER = ("openvino",)
# what a device-only artifact's load_check keeps of its simulator run (converters.rknn), for the outcome and the card
SIMULATED = ("where", "reference", "images", "top1_agreement", "min_cosine", "max_abs_diff")


@dataclass
class Validation:
    """The validation split and its metric. samples: (image, class index) for classification, (image, label file)
    for detection. Images are preprocessed once and reused for every artifact."""

    task: str
    input_size: int
    samples: list[tuple]
    num_classes: int
    split: str = "val"
    _prepared: list | None = field(default=None, repr=False)

    def prepared(self) -> list:
        if self._prepared is None:
            if self.task == DETECTION:
                from .detect_infer import letterbox

                self._prepared = [letterbox(image, self.input_size) for image, _ in self.samples]
            else:
                from tango_common.images import preprocess_image

                self._prepared = [preprocess_image(image, self.input_size) for image, _ in self.samples]
        return self._prepared

    def arrays(self) -> list[np.ndarray]:
        """(1, 3, S, S) inputs, for engines that validate by themselves (NNCF's accuracy control)."""
        return [(p[0] if self.task == DETECTION else p)[None] for p in self.prepared()]

    @property
    def primary(self) -> str:
        return "map50_95" if self.task == DETECTION else "top1"

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("map50", "map50_95") if self.task == DETECTION else ("top1",)

    def evaluate(self, run: Runner) -> dict:
        """Metrics in percent, computed by running every validation image through `run`."""
        if not self.samples:
            raise ValueError("No validation images to evaluate on.")
        if self.task == DETECTION:
            return self._detection(run)
        inputs = np.stack(self.prepared())
        labels = np.array([label for _, label in self.samples])
        predicted = np.concatenate([np.asarray(run(inputs[i:i + 32])).argmax(1) for i in range(0, len(inputs), 32)])
        return {"top1": round(100 * float((predicted == labels).mean()), 3), "n_images": len(labels)}

    def _detection(self, run: Runner) -> dict:
        from .converters.base import first_output
        from .detect_infer import decode, to_image_pixels
        from .detect_onnx import DEFAULT_IOU, MAP_CONF, map50, map50_95, read_yolo_labels

        detections, truths = [], []
        for (array, transform), (_, label) in zip(self.prepared(), self.samples, strict=True):
            raw = first_output(run(array[None]))[0]
            detections.append(to_image_pixels(decode(raw, conf=MAP_CONF, iou=DEFAULT_IOU), transform))
            truths.append(read_yolo_labels(label, transform["width"], transform["height"]))
        return {"map50": round(100 * map50(detections, truths, self.num_classes), 3),
                "map50_95": round(100 * map50_95(detections, truths, self.num_classes), 3),
                "n_images": len(self.samples)}

    def metric_fn(self) -> Callable:
        """(runner, data) -> primary metric in [0, 1]: the validation function NNCF's accuracy control calls."""
        return lambda run, _data: self.evaluate(run)[self.primary] / 100


def drop(reference: dict, metrics: dict, names) -> float:
    """The largest loss in points over the metrics (negative: the artifact did better)."""
    return max(reference[name] - metrics[name] for name in names)


def delta(reference: dict, metrics: dict, names, digits: int = 3) -> float:
    """The accuracy change in points as the tables show it (the worst metric, rounded); one that rounds to zero is
    0.0, not -0.0, which read "Δ -0.0 points"."""
    return round(-drop(reference, metrics, names), digits) + 0.0  # -0.0 + 0.0 is 0.0


@dataclass
class Attempt:
    step: str
    precision: str
    options: dict
    calibration: dict | None
    metrics: dict | None
    drop: float | None
    passed: bool
    seconds: float
    error: str | None = None
    # an artifact that runs only on the device: what was checked here instead of its accuracy (RKNN: its outputs in
    # the toolkit's simulator against the reference; empty where nothing could run here, a TensorRT build kit)
    simulated: dict | None = None

    def as_dict(self) -> dict:
        return {"step": self.step, "precision": self.precision, "options": self.options,
                "calibration": self.calibration, "metrics": self.metrics,
                "drop": None if self.drop is None else round(self.drop, 3), "passed": self.passed,
                "seconds": round(self.seconds, 1), "error": self.error, "simulated": self.simulated}


@dataclass
class Outcome:
    """What the guard did: the artifact that passed (None: nothing passed), every attempt, the fallback taken."""

    engine: str
    asked: str
    artifact: Artifact | None
    attempts: list[Attempt]
    reference: dict
    tolerance: float
    reference_name: str = TRAINED_REFERENCE  # what the reference metrics ran (Source.reference_name)

    @property
    def passed(self) -> bool:
        return self.artifact is not None

    @property
    def fallback(self) -> str | None:
        """How the passing artifact differs from what was asked, in words; None when the first try passed."""
        if not self.passed or len(self.attempts) == 1:
            return None
        return self.attempts[-1].step

    def summary(self) -> str:
        if not self.passed:
            return (f"{self.engine} {self.asked}: no variant stayed within {self.tolerance:g} point(s) of "
                    f"{self.reference_name}; nothing shipped for it.")
        last = self.attempts[-1]
        if last.drop is None:
            return f"{self.engine} {self.asked}: " + on_device_check(last.simulated)
        if self.fallback is None:
            return (f"{self.engine} {self.asked}: within {self.tolerance:g} point(s) of {self.reference_name} "
                    f"(drop {last.drop:+.2f}).")
        first = self.attempts[0]
        what = "did not convert" if first.drop is None else f"lost {first.drop:.2f} point(s)"
        return (f"{self.engine} {self.asked} {what}; the guard fell back to "
                f"'{last.step}' ({last.precision}, drop {last.drop:+.2f}).")

    def as_dict(self) -> dict:
        return {"engine": self.engine, "asked": self.asked, "passed": self.passed,
                "precision": self.artifact.precision if self.artifact else None, "fallback": self.fallback,
                "tolerance": self.tolerance, "reference": self.reference, "reference_name": self.reference_name,
                "attempts": [a.as_dict() for a in self.attempts], "summary": self.summary()}


def on_device_check(simulated: dict | None) -> str:
    """What was checked here of an artifact only the device runs, and what is left to the device, in words."""
    if not simulated:
        return "nothing could run it here; its accuracy is measured on the device."
    agree = simulated.get("top1_agreement")
    return (f"checked here in the {simulated['where']} against {simulated['reference']} on {simulated['images']} "
            "images (" + (f"top-1 agreement {100 * agree:.0f}%, " if agree is not None else "")
            + f"min cosine {simulated['min_cosine']:.4f}); its accuracy on the device itself is measured there.")


def ladder(engine: str, precision: str, task: str, *, more_calibration: CalibrationSet | None,
           validation: Validation, tolerance: float = DEFAULT_TOLERANCE) -> list[tuple[str, str, dict, bool]]:
    """(step, precision, options, use the larger calibration set) in the order the guard tries them."""
    steps = [("as asked", precision, {}, False)]
    if precision == "int8":
        head = {"head_in_float": True} if task == DETECTION else {}
        decode = {"decode_in_float": True} if head and engine in DECODE_IN_FLOAT else {}
        if decode:
            # first the decode alone (the head's hidden convolutions stay int8: on YOLO11n at 640 px, a fifth of
            # the int8 model's time, a third once in float), then the whole head
            steps.append(("detection decode kept in float", "int8", decode, False))
        # OpenVINO runs an int8 model's float remainder in bf16 where the CPU has it (converters.openvino): the same
        # quantisation with that remainder in f32 comes before anything that gives up int8 layers, and every later
        # step keeps it in f32
        bf16_here = engine in BF16_REMAINDER and "bf16" in registry.precisions_here(engine)
        rest = {"float_precision": "f32"} if bf16_here else {}
        if rest:
            steps.append(("float layers in f32", "int8", {**decode, **rest}, False))
        if head:
            steps.append(("detection head kept in float", "int8", {**head, **rest}, False))
        if engine == "onnxruntime":
            steps.append(("most sensitive layers kept in float", "int8",
                          {**head, "keep_sensitive": SENSITIVE_LAYERS}, False))
        elif engine == "openvino":
            steps.append(("most sensitive layers kept in float", "int8",
                          {**head, **rest, "max_drop": tolerance / 100,
                           "validate": {"arrays": validation.arrays(), "metric": validation.metric_fn()}},
                          False))
        if more_calibration is not None and len(more_calibration):
            steps.append(("more calibration images", "int8", {**head, **rest}, True))
        here = registry.precisions_here(engine)
        steps.append(("fp16", "fp16", {}, False) if "fp16" in here else ("fp32", "fp32", {}, False))
    elif precision in ("fp16", "bf16"):
        steps.append(("fp32", "fp32", {}, False))
    return steps


def guarded_convert(engine: str, source: Source, *, precision: str, out_dir: Path, validation: Validation,
                    reference: dict, calibration: CalibrationSet | None = None,
                    more_calibration: CalibrationSet | None = None, tolerance: float = DEFAULT_TOLERANCE,
                    report: Report | None = None, threads: int | None = 1,
                    target_options: dict | None = None) -> Outcome:
    """Convert, evaluate against the reference (source.reference_name ran it), fall back until within tolerance.
    Artifacts that build on the device cannot be evaluated here: they pass through, marked unchecked. target_options
    (what the engine must know of the device: TVM's CPU target, RKNN's SoC) go to every attempt."""
    out_dir = Path(out_dir)
    attempts: list[Attempt] = []
    reference_name = source.reference_name
    for index, (step, variant, options, larger) in enumerate(ladder(engine, precision, source.task,
                                                                     more_calibration=more_calibration,
                                                                     validation=validation, tolerance=tolerance)):
        calib = more_calibration if larger else calibration
        options = {**(target_options or {}), **options}
        folder = out_dir / f"{engine}-{precision}-try{index + 1}"
        started = time.perf_counter()
        try:
            artifact = registry.convert(engine, source, precision=variant, out_dir=folder, calibration=calib,
                                        options=options, report=report)
        except ConversionError as error:
            attempts.append(Attempt(step, variant, _clean(options), calib and calib.describe(), None, None, False,
                                    time.perf_counter() - started, str(error)))
            say(report, f"guard: {engine} {variant} ({step}) did not convert: {error}")
            shutil.rmtree(folder, ignore_errors=True)
            continue
        if not artifact.runs_here:
            check = artifact.load_check
            simulated = {k: check[k] for k in SIMULATED if k in check} if "where" in check else None
            attempts.append(Attempt(step, variant, _clean(artifact.options), artifact.calibration, None, None, True,
                                    time.perf_counter() - started, simulated=simulated))
            say(report, f"guard: {artifact.label} {artifact.status}; {on_device_check(simulated)}")
            return Outcome(engine, precision, artifact, attempts, reference, tolerance, reference_name)
        metrics = validation.evaluate(registry.load(artifact, threads=threads))
        lost = drop(reference, metrics, validation.metric_names)
        ok = lost <= tolerance
        attempts.append(Attempt(step, variant, _clean(artifact.options), artifact.calibration, metrics, lost, ok,
                                time.perf_counter() - started))
        shown = ", ".join(f"{name} {metrics[name]:.2f}% ({reference_name} {reference[name]:.2f}%)"
                          for name in validation.metric_names)
        say(report, f"guard: {artifact.label} ({step}): {shown}: "
                    + ("passes." if ok else f"lost {lost:.2f} points, over the {tolerance:g}-point tolerance."))
        if ok:
            artifact.notes.append(f"accuracy guard: {step}, drop {lost:+.2f} points")
            return Outcome(engine, precision, artifact, attempts, reference, tolerance, reference_name)
        shutil.rmtree(folder, ignore_errors=True)
    return Outcome(engine, precision, None, attempts, reference, tolerance, reference_name)


def _clean(options: dict) -> dict:
    return {k: v for k, v in options.items() if k != "validate"}
