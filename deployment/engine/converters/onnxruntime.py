"""ONNX Runtime: fp32 (the verified export as it is), fp16 (weights and arithmetic in half, inputs and outputs kept
float32), int8 (static QDQ quantisation, calibrated on images of the project's own dataset).

A detector's file is fixed at batch 1 with its shape arithmetic folded first (graph.static_batch_one: about half of
YOLO11n's nodes are that arithmetic, run at every inference otherwise); every precision is built from it and its
runner feeds it one image at a time."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from .base import (
    DETECTION,
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
from .graph import fixed_batch, write_static_detector

HEAD_PATTERN = re.compile(r"^/model\.(\d+)/")  # ultralytics' layers export as /model.<index>/…; the last is Detect
# Inside the head, the branches' hidden convolution blocks (box branch cv2.<level>.0/.1, class branch cv3.<level>.0/.1,
# depthwise pairs included) hold most of its arithmetic: at 640 px they run on 80x80 maps. What follows them — the
# 1x1 output convolutions (.2), the DFL softmax, the box decode in input pixels, the class sigmoid and the concat of
# boxes (0-640) with scores (0-1) into one tensor — is little arithmetic, and is what int8 breaks: one uint8 scale
# cannot carry pixel coordinates and probabilities at once.
HEAD_BODY = re.compile(r"^/model\.\d+/cv[23]\.\d+/cv[23]\.\d+\.[01]/")


def head_nodes(onnx_model, *, decode_only: bool = False) -> list[str]:
    """Names of the detection head's nodes (the highest-numbered ultralytics layer); [] for other graphs.
    decode_only: the head's output convolutions and decode alone, without the branches' hidden blocks."""
    indices = [int(m.group(1)) for n in onnx_model.graph.node if (m := HEAD_PATTERN.match(n.name))]
    if not indices:
        return []
    prefix = f"/model.{max(indices)}/"
    return [n.name for n in onnx_model.graph.node if n.name.startswith(prefix)
            and not (decode_only and HEAD_BODY.match(n.name))]


def head_float_note(options: dict) -> str:
    """What of the head an int8 conversion keeps in float, for its log line ('' when nothing)."""
    if options.get("head_in_float"):
        return "detection head kept in float"
    if options.get("decode_in_float"):
        return "detection head's output convolutions and decode kept in float"
    return ""


class OnnxRuntimeConverter:
    engine = "onnxruntime"
    label = "ONNX Runtime"
    runtime_modules = ("onnxruntime",)  # what load() imports (benchmark: imported before the memory baseline)

    def missing(self) -> str | None:
        return module_missing("onnxruntime")

    def precisions(self) -> tuple[str, ...]:
        return () if self.missing() else ("fp32", "fp16", "int8")

    def versions(self) -> dict[str, str]:
        import onnx
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        options = dict(options or {})
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"model-ort-{precision}.onnx"
        used_calibration = None
        if precision not in ("fp32", "fp16", "int8"):
            raise ConversionError(f"ONNX Runtime does not offer {precision}.")
        if source.task == DETECTION:
            static = out_dir / "model-static.onnx"
            counts = write_static_detector(source.onnx_path, static, source.input_size)
            folded = (f"shape arithmetic folded ({counts['nodes_before']} -> {counts['nodes_after']} nodes)"
                      + (", DFL softmax on the last axis" if counts["dfl_rewritten"] else ""))
            options["graph"] = f"batch 1, {folded}"
            say(report, f"ONNX Runtime: the detector fixed at batch 1, {folded}.")
            source = replace(source, onnx_path=static)
        if precision == "fp32":
            shutil.copyfile(source.onnx_path, path)
        elif precision == "fp16":
            self._fp16(source.onnx_path, path, options)
            say(report, "ONNX Runtime fp16: weights and arithmetic in half precision; inputs and outputs stay "
                        "float32.")
        elif precision == "int8":
            calibration = require_calibration(self.engine, precision, calibration)
            self._int8(source, path, calibration, options, report)
            used_calibration = calibration.describe()
        if source.task == DETECTION:
            Path(source.onnx_path).unlink(missing_ok=True)
        return Artifact(engine=self.engine, precision=precision, path=path, files=[path], task=source.task,
                        input_size=source.input_size, converter_versions=self.versions(), calibration=used_calibration,
                        options=options)

    @staticmethod
    def _fp16(src: Path, dst: Path, options: dict) -> None:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True,
                                         node_block_list=options.get("keep_float") or None)
        onnx.save(model, str(dst))

    def _int8(self, source: Source, dst: Path, calibration: CalibrationSet, options: dict, report) -> None:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self._batches = ({"images": batch} for batch in calibration.arrays())

            def get_next(self):
                return next(self._batches, None)

        prepared = dst.with_name(dst.stem + "-prep.onnx")
        try:
            with _quiet_root():
                _pre_process(source.onnx_path, prepared)
                keep_float = list(options.get("keep_float") or [])
                if options.get("head_in_float") or options.get("decode_in_float"):
                    keep_float += head_nodes(onnx.load(str(prepared)), decode_only=not options.get("head_in_float"))
                options["keep_float"] = sorted(set(keep_float))
                options.setdefault("reduce_range", needs_reduced_range())
                options.setdefault("format", "QDQ, per-channel int8 weights"
                                   + (" (7-bit range)" if options["reduce_range"] else "")
                                   + ", uint8 activations, MinMax calibration")
                say(report, f"ONNX Runtime int8: static QDQ calibrated on {len(calibration)} {calibration.split} "
                            "images" + (f", {len(options['keep_float'])} node(s) kept in float"
                                        if options["keep_float"] else "") + ".")

                def quantize(exclude):
                    quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                                    per_channel=True, reduce_range=bool(options.get("reduce_range")),
                                    activation_type=QuantType.QUInt8,
                                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})

                quantize(options["keep_float"])
                if k := int(options.get("keep_sensitive") or 0):
                    # ONNX Runtime's own QDQ debugger tells which tensors lose the most to quantisation (lowest
                    # signal-to-quantisation-noise ratio on the calibration images); their nodes stay float.
                    sensitive = sensitive_nodes(prepared, dst, calibration.first(8), k)
                    options["keep_float"] = sorted(set(options["keep_float"]) | set(sensitive))
                    options["sensitive_nodes"] = sensitive
                    say(report, f"ONNX Runtime int8: the {len(sensitive)} most sensitive node(s) by QDQ "
                                f"signal-to-noise stay float: {', '.join(sensitive[:6])}"
                                + ("…" if len(sensitive) > 6 else "") + ".")
                    quantize(options["keep_float"])
        except ConversionError:
            raise
        except Exception as error:
            raise ConversionError(f"ONNX Runtime int8 quantisation failed: {type(error).__name__}: "
                                  f"{str(error)[:300]}") from error
        finally:
            prepared.unlink(missing_ok=True)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        import onnxruntime as ort

        from ..timing import session_options

        session = ort.InferenceSession(str(artifact.path), session_options(ort, threads),
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(batch: np.ndarray) -> np.ndarray:
            return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

        return per_item(run) if fixed_batch(artifact.path) == 1 else run


def needs_reduced_range(flags: frozenset[str] | None = None) -> bool:
    """Quantise weights to 7 bits on x86 CPUs without VNNI. There ONNX Runtime multiplies uint8 activations by int8
    weights with VPMADDUBSW, whose pairwise sums saturate at 16 bits (its documentation's caveat, and its advice:
    reduce_range). Seen here on YOLO11n at 640 px on an AVX2-only EPYC: with the decode in float, int8 kept 8-bit
    weights out of the guard's tolerance at every step; with 7-bit weights it scored within it."""
    from tango_common.engines import cpu_flags

    flags = cpu_flags() if flags is None else flags
    x86 = bool(flags & {"avx2", "sse4_1"})
    return x86 and not flags & {"avx512_vnni", "avx_vnni", "amx_int8", "avx512vnni"}


def _pre_process(src: Path, dst: Path) -> None:
    """ONNX Runtime's recommended step before quantising: shape inference and graph optimisation (folds what
    can be folded, so fewer tensors are quantised); falls back to the model as it is if the step fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception:  # the optimiser refuses a few graphs; quantising the unoptimised one still works
        shutil.copyfile(src, dst)


class _quiet_root:
    """onnxruntime.quantization logs a warning per tensor to the root logger; the job log gets one line instead."""

    def __enter__(self):
        import logging

        self._level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc):
        import logging

        logging.getLogger().setLevel(self._level)


def sensitive_nodes(float_path: Path, qdq_path: Path, calibration: CalibrationSet, k: int) -> list[str]:
    """The nodes around the k activations whose quantisation loses the most (ONNX Runtime's qdq_loss_debug)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = ({"images": batch} for batch in calibration.arrays())

        def get_next(self):
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        activations = {}
        for key, path in (("float", float_path), ("qdq", qdq_path)):
            augmented = Path(tmp) / f"{key}.onnx"
            modify_model_output_intermediate_tensors(str(path), str(augmented))
            activations[key] = collect_activations(str(augmented), Reader())
    errors = compute_activation_error(create_activation_matching(activations["qdq"], activations["float"]))
    ranked = sorted((e["qdq_err"], name) for name, e in errors.items() if "qdq_err" in e
                    and np.isfinite(e["qdq_err"]))
    worst = {name for _, name in ranked[:k]}
    graph = onnx.load(str(float_path)).graph
    return sorted({n.name for n in graph.node if worst & (set(n.output) | set(n.input)) and n.name})
