"""This server measures itself: time a spread of candidates with ONNX Runtime and store them as records.

Each record recalibrates This_Server's latency and memory models at once (they are fitted on read). The spread
covers the three families, small to large, at several input sizes, so the fit sees compute-, memory- and
overhead-bound networks; it takes a few minutes on a two-core server.
"""

from .models import Device, RecordSource

ENGINE = "onnxruntime"
PRECISION = "fp32"
NUM_CLASSES = 10
# (model, input size). Full-size VGG only at 224 px: its 7x7 adaptive pool exports to ONNX only there.
SPREAD = [("resnet18", 64), ("resnet18", 160), ("resnet34", 96), ("resnet50", 128), ("resnet101", 96),
          ("densenet_tiny", 96), ("densenet121", 96), ("densenet169", 64), ("vgg_tiny", 128), ("vgg11", 224)]
QUICK_SPREAD = [("resnet18", 32), ("densenet_tiny", 32), ("vgg_tiny", 32)]


def host_calibrate(*, report, spread: list[tuple[str, int]] | None = None) -> list:
    """Benchmark the spread on This_Server and store one record each; returns the records."""
    from .ort_timing import time_zoo_model
    from .services import benchmark_record_add, host_device_refresh, latency_model_for

    device = Device.objects.filter(is_host=True).first() or host_device_refresh()
    records = []
    spread = spread or SPREAD
    for index, (model_name, input_size) in enumerate(spread, 1):
        predicted = latency_model_for(device=device, engine=ENGINE, precision=PRECISION)
        timing = time_zoo_model(model_name, num_classes=NUM_CLASSES, input_size=input_size)
        record = benchmark_record_add(
            device=device, engine=ENGINE, precision=PRECISION, model_name=model_name, num_classes=NUM_CLASSES,
            input_size=input_size, latency_ms=timing["latency_ms"], memory_mb=timing["memory_mb"],
            source=RecordSource.CALIBRATE,
            details={k: timing[k] for k in ("latency_wall_ms", "runs", "threads")} | {"timing": "thread CPU time"})
        before = predicted.predict_ms(_costs(record))
        report(f"{model_name} at {input_size} px: {timing['latency_ms']:.2f} ms, {timing['memory_mb']:.0f} MiB "
               f"(predicted {before:.2f} ms from {predicted.records} record(s) before it, "
               f"{100 * (before / timing['latency_ms'] - 1):+.0f}%)", progress=100 * index / len(spread))
        records.append(record)
    return records


def _costs(record):
    from .engine.costs import Costs

    return Costs.from_dict(record.architecture.costs)
