"""OpenVINO: IR (model.xml + model.bin) in fp32, fp16 (weights stored in half), bf16, and int8 through NNCF's
post-training quantisation calibrated on the project's images.

OpenVINO runs bf16 silently on CPUs that have it. The precision here is always explicit: every artifact records
the INFERENCE_PRECISION_HINT it is compiled with, fp32 is compiled with "f32", and bf16 is a precision of its own,
offered only where the CPU reports BF16 among its optimisation capabilities.

An int8 model is not int8 throughout: NNCF leaves in float what it does not quantise (a detector's decode kept in
float by the guard, attention MatMuls, softmaxes) and the CPU plugin adds reorders between int8 and float layouts.
Its hint sets the precision of that float remainder, recorded as `float_precision`: "bf16" by default where the CPU
has bf16, "f32" elsewhere (the accuracy guard checks it, and falls back to f32 before it gives up anything else).
Measured on YOLO11n at 640 px, decode in float, one thread on an AVX512-BF16 EPYC: 14.3 ms with the remainder in
f32, 13.0 ms in bf16 (the head's f32 NHWC-to-NCHW reorder alone was 6% of the time; in bf16 it runs as a JIT kernel),
with the same mAP. At 320 px the remainder is small and the two are within noise.

NNCF's accuracy control (the guard's "most sensitive layers kept in float") compiles and scores its candidates
itself, in f32 with nncf 3.4 (OVPreparedModel), while OpenVINO's own default on an AMX Xeon is bf16: the precision
each candidate was compiled in is read off it, and the artifact's float layers ship in that precision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tango_common.engines import cpu_has_bf16

from .base import (
    Artifact,
    CalibrationSet,
    ConversionError,
    Report,
    Runner,
    Source,
    module_missing,
    per_item,
    require_calibration,
    say,
)
from .onnxruntime import HEAD_PATTERN, head_float_note


def _capabilities() -> set[str]:
    import openvino as ov

    try:
        return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # an OpenVINO without the CPU plugin: no capabilities to offer
        return set()


class OpenVinoConverter:
    engine = "openvino"
    label = "OpenVINO"
    runtime_modules = ("openvino",)  # what load() imports (benchmark: imported before the memory baseline)

    def missing(self) -> str | None:
        return module_missing("openvino")

    def has_bf16(self) -> bool:
        return "BF16" in _capabilities() or cpu_has_bf16()

    def has_nncf(self) -> bool:
        try:
            import nncf  # noqa: F401
        except ImportError:
            return False
        return True

    def precisions(self) -> tuple[str, ...]:
        if self.missing():
            return ()
        return ("fp32", "fp16") + (("bf16",) if self.has_bf16() else ()) + (("int8",) if self.has_nncf() else ())

    def hint(self, precision: str, float_precision: str | None = None) -> str:
        """The INFERENCE_PRECISION_HINT an artifact of this precision is compiled with on this CPU (int8: that of its
        float remainder, see the module's doc)."""
        if precision == "bf16" or (precision == "int8" and float_precision == "bf16"):
            return "bf16"
        if precision == "fp16" and "FP16" in _capabilities():
            return "f16"
        return "f32"

    def versions(self) -> dict[str, str]:
        import openvino as ov

        versions = {"openvino": ov.__version__}
        if self.has_nncf():
            import nncf

            versions["nncf"] = nncf.__version__
        return versions

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        import openvino as ov

        options = dict(options or {})
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        xml = out_dir / f"model-openvino-{precision}.xml"
        model = ov.convert_model(str(source.onnx_path))
        used_calibration = None
        if precision == "bf16" and not self.has_bf16():
            raise ConversionError("OpenVINO bf16 needs a CPU with bf16 instructions; this server has none.")
        if precision == "int8":
            calibration = require_calibration(self.engine, precision, calibration)
            options["float_precision"] = self._float_precision(options)
            model = self._int8(model, source, calibration, options, report)
            used_calibration = calibration.describe()
        elif precision not in ("fp32", "fp16", "bf16"):
            raise ConversionError(f"OpenVINO does not offer {precision}.")
        ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
        options["inference_precision_hint"] = self.hint(precision, options.get("float_precision"))
        notes = []
        if precision == "fp16" and options["inference_precision_hint"] == "f32":
            notes.append("fp16 weights; this CPU computes in f32 (no fp16 arithmetic), so the gain is file size.")
        if precision == "int8":
            notes.append("int8 layers compute in int8; the layers left in float compute in "
                         f"{options['float_precision']}.")
        say(report, f"OpenVINO {precision}: IR written, compiled with INFERENCE_PRECISION_HINT="
                    f"{options['inference_precision_hint']}" + (" (its layers left in float)" if precision == "int8"
                                                                 else "") + ".")
        return Artifact(engine=self.engine, precision=precision, path=xml, files=[xml, xml.with_suffix(".bin")],
                        task=source.task, input_size=source.input_size, converter_versions=self.versions(),
                        calibration=used_calibration, options=options, notes=notes)

    def _float_precision(self, options: dict) -> str:
        """What an int8 model's float remainder computes in: as asked, else bf16 where the CPU has it."""
        asked = options.get("float_precision") or ("bf16" if self.has_bf16() else "f32")
        if asked not in ("f32", "bf16"):
            raise ConversionError(f"OpenVINO int8 keeps its float layers in f32 or bf16, not {asked}.")
        if asked == "bf16" and not self.has_bf16():
            raise ConversionError("OpenVINO int8 with its float layers in bf16 needs a CPU with bf16 instructions; "
                                  "this server has none.")
        return asked

    def _int8(self, model, source: Source, calibration: CalibrationSet, options: dict, report):
        import nncf

        names = list(options.get("keep_float") or [])
        patterns = []
        if options.get("head_in_float") or options.get("decode_in_float"):
            heads = [int(m.group(1)) for op in model.get_ops() if (m := HEAD_PATTERN.match(op.get_friendly_name()))]
            if heads:
                # the whole head, or all of it but the branches' hidden blocks (onnxruntime.HEAD_BODY)
                body = "" if options.get("head_in_float") else r"(?!cv[23]\.\d+/cv[23]\.\d+\.[01]/)"
                patterns.append(rf"^/model\.{max(heads)}/{body}.*")
        options["keep_float"] = names
        options["keep_float_patterns"] = patterns
        ignored = nncf.IgnoredScope(names=names, patterns=patterns, validate=False) if names or patterns else None
        preset = nncf.QuantizationPreset(options["preset"]) if options.get("preset") else (
            nncf.QuantizationPreset.MIXED if source.task == "detection" else nncf.QuantizationPreset.PERFORMANCE)
        options.setdefault("method", f"NNCF post-training quantisation, {preset.value} preset")
        say(report, f"OpenVINO int8: NNCF post-training quantisation on {len(calibration)} {calibration.split} "
                    "images" + (f", {head_float_note(options)}" if patterns else "")
                    + (f", {len(names)} layer(s) kept in float" if names else "") + ".")
        dataset = nncf.Dataset(list(calibration.arrays()))
        kwargs = {"subset_size": len(calibration), "preset": preset}
        if ignored is not None:
            kwargs["ignored_scope"] = ignored
        if validate := options.pop("validate", None):
            # The engine tells which layers cost accuracy: NNCF reverts the most sensitive to float until the
            # metric is within max_drop of the float model's. It compiles every candidate it judges itself, with
            # its own settings (nncf 3.4: inference precision f32, where OpenVINO's default on an AMX CPU is bf16):
            # the precision each was compiled in is read off it, and the artifact ships its float layers in that
            # precision, so what NNCF judged is what ships.
            max_drop = float(options.get("max_drop", 0.01))
            validation = nncf.Dataset(list(validate["arrays"]))
            judged: set[str] = set()

            def validation_fn(compiled, data):
                judged.add(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
                return validate["metric"](_compiled_runner(compiled), data)

            try:
                quantized = nncf.quantize_with_accuracy_control(
                    model, calibration_dataset=dataset, validation_dataset=validation, validation_fn=validation_fn,
                    max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE, **kwargs)
            except Exception as error:  # NNCF's own failure is this step's failure; the guard goes on
                raise ConversionError(f"NNCF accuracy control failed: {type(error).__name__}: "
                                      f"{str(error)[:300]}") from error
            if len(judged) != 1 or not judged <= {"f32", "bf16"}:
                raise ConversionError(f"NNCF accuracy control judged its candidates in {sorted(judged) or 'nothing'};"
                                      " no single float precision to ship them in.")
            shipped, options["float_precision"] = options["float_precision"], judged.pop()
            if shipped != options["float_precision"]:
                say(report, f"OpenVINO int8: NNCF's accuracy control judged its candidates with the float layers in "
                            f"{options['float_precision']}; the artifact keeps them in {options['float_precision']} "
                            f"(not {shipped}), as judged.")
            options["accuracy_control"] = {"max_drop": max_drop, "by": "nncf.quantize_with_accuracy_control",
                                           "judged_in": options["float_precision"]}
            return quantized
        try:
            with _quiet():
                return nncf.quantize(model, dataset, **kwargs)
        except Exception as error:
            raise ConversionError(f"NNCF quantisation failed: {type(error).__name__}: {str(error)[:300]}") from error

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        model.reshape([1, 3, artifact.input_size, artifact.input_size])
        config = {"INFERENCE_PRECISION_HINT": artifact.options.get("inference_precision_hint")
                  or self.hint(artifact.precision), "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        return per_item(_compiled_runner(core.compile_model(model, "CPU", config)))


def _compiled_runner(compiled) -> Runner:
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(request.get_output_tensor(0).data)

    return run


class _quiet:
    """NNCF logs progress bars to stderr; the job log gets our own lines instead."""

    def __enter__(self):
        import logging

        self._logger = logging.getLogger("nncf")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
