"""The one registry of engines: what each needs, which precisions it offers on this host, and the convert/load
entry points every caller (convert stage, guard, benchmark, bench) goes through.

What the wizard may offer is tango_common.engines.engine_support (the Django side cannot import this core);
`support_matches()` keeps the two in step and a test holds it. An engine not built in this version would be a
slot: `register()` a Converter for it and add its precisions to tango_common.engines.BUILT.
What each engine cannot run or runs slowly, layer by layer, is in the same module (tango_common.engines.LAYER_FACTS,
each fact with its source): the visualiser flags those layers before anything is trained.
"""

from __future__ import annotations

from pathlib import Path

from tango_common.engines import ENGINES, engine_support

from .base import (
    Artifact,
    CalibrationSet,
    ConversionError,
    Converter,
    EngineMissing,
    Report,
    Runner,
    Source,
    example_input,
    run_once,
    say,
)
from .onnxruntime import OnnxRuntimeConverter
from .openvino import OpenVinoConverter
from .pytorch import PyTorchConverter
from .rknn import RknnConverter
from .tensorrt import TensorRtConverter
from .tflite import TfliteConverter
from .tvm import TvmConverter

_CONVERTERS: dict[str, Converter] = {}


def register(converter: Converter) -> None:
    if converter.engine not in ENGINES:
        raise ValueError(f"Unknown engine {converter.engine!r}; add it to tango_common.engines first.")
    _CONVERTERS[converter.engine] = converter


def converter_for(engine: str) -> Converter:
    try:
        return _CONVERTERS[engine]
    except KeyError:
        label = ENGINES[engine].label if engine in ENGINES else engine
        raise EngineMissing(f"{label} builds are not available in this version.") from None


def engines() -> list[str]:
    return list(_CONVERTERS)


def precisions_here(engine: str) -> tuple[str, ...]:
    """Precisions converted and run on this host (TensorRT without `tensorrt`: none; it builds on the device)."""
    converter = _CONVERTERS.get(engine)
    return converter.precisions() if converter and not converter.missing() else ()


def offered(engine: str) -> tuple[str, ...]:
    """Every precision the engine's converter makes here, run here or built on the device."""
    converter = _CONVERTERS.get(engine)
    if converter is None:
        return ()
    device = getattr(converter, "precisions_on_device", lambda: ())()
    return tuple(dict.fromkeys((*converter.precisions(), *device)))


def matrix() -> list[tuple[str, str]]:
    """(engine, precision) for everything that converts and runs on this host, in registry order."""
    return [(engine, precision) for engine in _CONVERTERS for precision in precisions_here(engine)]


def convert(engine: str, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
            options: dict | None = None, report: Report | None = None) -> Artifact:
    """Convert, then load the artifact with its own runtime and run it once; only then is it returned."""
    converter = converter_for(engine)
    if why := converter.missing():
        raise EngineMissing(why)
    if precision not in offered(engine):
        raise ConversionError(f"{converter.label} does not offer {precision} on this server "
                              f"(it offers {', '.join(offered(engine)) or 'nothing'}).")
    artifact = converter.convert(source, precision=precision, out_dir=Path(out_dir), calibration=calibration,
                                 options=options, report=report)
    if artifact.runs_here:
        artifact.load_check = run_once(artifact, converter.load(artifact), example_input(source, calibration))
    say(report, f"{artifact.label}: {artifact.path.name}, {artifact.size_bytes / 1e6:.2f} MB"
                + (", loaded and run once" if artifact.runs_here else f", {artifact.status}") + ".")
    return artifact


def load(artifact: Artifact, *, threads: int | None = None) -> Runner:
    if not artifact.runs_here:
        raise ConversionError(f"{artifact.label} builds on the device; it does not run on this server.")
    return converter_for(artifact.engine).load(artifact, threads=threads)


def support_matches() -> dict[str, tuple]:
    """Engines where this registry and tango_common's support table disagree: {engine: (registry, table)}."""
    out = {}
    for engine in ENGINES:
        table = set(engine_support(engine).built)
        mine = set(offered(engine)) if engine in _CONVERTERS and not _CONVERTERS[engine].missing() else set()
        if engine in _CONVERTERS and _CONVERTERS[engine].missing():
            table = set(engine_support(engine).on_device)
        if table != mine:
            out[engine] = (sorted(mine), sorted(table))
    return out


# Slots for engines another module will convert for (each a Converter registered here, its precisions added to
# tango_common.engines.BUILT): until then convert() says "not available in this version".
SLOTS: tuple[str, ...] = ()

for _converter in (PyTorchConverter(), OnnxRuntimeConverter(), OpenVinoConverter(), TensorRtConverter(),
                   TvmConverter(), RknnConverter(), TfliteConverter()):
    register(_converter)
