"""This server measures itself: time a spread of candidates, one after another, and store each measurement as it
comes, so the next prediction is already fitted with it. Django-free.

The caller hands in plain callables: `measure(model, input_size) -> dict` (latency_ms, memory_mb and how it was
measured), `predict(model, input_size) -> (ms, records behind it)` (the device's model as it stands before this
measurement), `store(Measured)` and the usual `report(line, progress=None)`. `manage.py tango calibrate` and the
device page's calibration job both run `calibrate` through recommender.calibration.host_calibrate.

The spread covers the three classification families, small to large, at several input sizes, so the fit sees
compute-, memory- and overhead-bound networks; the full one takes a few minutes on a two-core server.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

# (model, input size). Full-size VGG only at 224 px: its 7x7 adaptive pool exports to ONNX only there.
SPREAD = [("resnet18", 64), ("resnet18", 160), ("resnet34", 96), ("resnet50", 128), ("resnet101", 96),
          ("densenet_tiny", 96), ("densenet121", 96), ("densenet169", 64), ("vgg_tiny", 128), ("vgg11", 224)]
QUICK_SPREAD = [("resnet18", 32), ("densenet_tiny", 32), ("vgg_tiny", 32)]


@dataclass(frozen=True)
class Measured:
    model: str
    input_size: int
    latency_ms: float
    memory_mb: float | None
    predicted_ms: float  # what the device's model predicted just before this measurement
    backed_by: int  # how many records that prediction was fitted to
    details: dict = field(default_factory=dict)  # how it was measured (runs, threads, wall time)

    @property
    def error(self) -> float:
        """Relative error of the prediction made before it (+0.25: predicted 25 % slower than measured)."""
        return self.predicted_ms / self.latency_ms - 1


def calibrate(*, spread: list[tuple[str, int]], measure: Callable[[str, int], dict],
              predict: Callable[[str, int], tuple[float, int]], store: Callable[[Measured], object],
              report: Callable[..., None]) -> list[Measured]:
    """Measure every (model, input size) of the spread in turn; store and report each. Returns the measurements."""
    if not spread:
        raise ValueError("Nothing to measure: the spread is empty.")
    report(f"Measuring {len(spread)} candidate{'s' if len(spread) != 1 else ''} with ONNX Runtime, fp32, batch 1.",
           progress=0)
    done = []
    for index, (model, input_size) in enumerate(spread, 1):
        predicted_ms, backed_by = predict(model, input_size)
        timing = measure(model, input_size)
        measured = Measured(model=model, input_size=input_size, latency_ms=float(timing["latency_ms"]),
                            memory_mb=timing.get("memory_mb"), predicted_ms=predicted_ms, backed_by=backed_by,
                            details={k: v for k, v in timing.items() if k not in ("latency_ms", "memory_mb")})
        store(measured)
        done.append(measured)
        memory = f", {measured.memory_mb:.0f} MiB" if measured.memory_mb is not None else ""
        report(f"{model} at {input_size} px: {measured.latency_ms:.2f} ms{memory} (predicted {predicted_ms:.2f} ms "
               f"from {backed_by} record(s) before it, {100 * measured.error:+.0f}%)",
               progress=100 * index / len(spread))
    return done
