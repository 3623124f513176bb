"""This server measures itself: the Django shell around recommender.engine.calibrate.

One mechanism, two callers: `manage.py tango calibrate` (recommender.cli) and the device page's calibration job
(the catalog stage "calibrate", whose runner is calibrate_stage) both call host_calibrate, which hands the core
the timing probe, the device's current prediction and a store that writes a BenchmarkRecord. Each record
recalibrates This_Server's latency and memory models at once (they are fitted on read).

The probe times the machine this code runs on: a job runs on a worker, which in team mode may be another host than
the web server; the console names the machine measured.
"""

import socket
from pathlib import Path

from .engine.calibrate import QUICK_SPREAD, SPREAD, Measured, calibrate
from .models import Device, RecordSource

STAGE = "calibrate"
ENGINE = "onnxruntime"
PRECISION = "fp32"
NUM_CLASSES = 10


def host_calibrate(*, report, quick: bool = False, folder: Path | None = None, user=None) -> list:
    """Benchmark the spread on this machine as the This_Server device; returns the records stored.

    folder: where the exported models go while they are timed (a job's folder); a temporary one when None."""
    from .ort_timing import time_zoo_model
    from .services import architecture_costs, benchmark_record_add, host_device_refresh, latency_model_for

    device = Device.objects.filter(is_host=True).first() or host_device_refresh()
    report(f"Measuring {socket.gethostname()} as {device.name} ({device.cpu_name or device.cpu_arch}).")
    records = []

    def predict(model: str, input_size: int) -> tuple[float, int]:
        fitted = latency_model_for(device=device, engine=ENGINE, precision=PRECISION)
        costs = architecture_costs(model_name=model, num_classes=NUM_CLASSES, input_size=input_size)
        return fitted.predict_ms(costs), fitted.records

    def measure(model: str, input_size: int) -> dict:
        return time_zoo_model(model, num_classes=NUM_CLASSES, input_size=input_size, folder=folder)

    def store(measured: Measured) -> None:
        records.append(benchmark_record_add(
            device=device, engine=ENGINE, precision=PRECISION, model_name=measured.model, num_classes=NUM_CLASSES,
            input_size=measured.input_size, latency_ms=measured.latency_ms, memory_mb=measured.memory_mb,
            source=RecordSource.CALIBRATE,
            details={k: measured.details[k] for k in ("latency_wall_ms", "runs", "threads", "timing")
                     if k in measured.details}))

    calibrate(spread=QUICK_SPREAD if quick else SPREAD, measure=measure, predict=predict, store=store,
              report=report)
    return records


def calibrate_stage(job, report) -> dict:
    """The catalog job's runner: job.params {"quick": bool}; the exports go to the job's folder."""
    from projects.jobs.storage import job_dir

    records = host_calibrate(report=report, quick=bool(job.params.get("quick")), folder=job_dir(job))
    device = records[0].device
    report(f"Stored {len(records)} records for {device.name}; its latency model is fitted to them from now on.")
    return {"device": device.pk, "device_name": device.name, "records": [r.pk for r in records],
            "quick": bool(job.params.get("quick"))}
