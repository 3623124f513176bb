"""Optimise & convert for the project's engine and precision, guarded; benchmark every artifact; the live Table 2.
The Django shell around deployment.engine's converters, guard, benchmark and compare (classification and
detection alike)."""

import platform
import random
import shutil
from pathlib import Path

from projects.devices import device_catalog
from projects.jobs.errors import StageError
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Task
from tango_common.hashing import sha256_file

from .imports import baseline_label, imported_onnx, is_imported, reference_name
from .models import KIND_OF_ENGINE, Artifact

CALIBRATION_IMAGES = 100  # the first int8 calibration: images of the project's train split
MORE_CALIBRATION_IMAGES = 500  # the guard's "more calibration images" step
GUARD_IMAGES = 1000  # validation images the guard and the benchmark evaluate on
COMPARE_IMAGES = 200  # validation images per row of the live Table 2
DEFAULT_TOLERANCE = 1.0


def tolerance_of(project) -> float:
    """The project's accuracy tolerance in points (options["accuracy_tolerance"], default 1)."""
    try:
        return float(project.options.get("accuracy_tolerance", DEFAULT_TOLERANCE))
    except (TypeError, ValueError):
        return DEFAULT_TOLERANCE


def host_label() -> str:
    return f"{platform.node()} ({platform.machine()}, {platform.processor() or 'CPU'})"


# --- what the engine core needs, read from the project --------------------------------------------------------


def _classification_samples(dataset, split: str) -> list[tuple[Path, int]]:
    from training.engine.data import list_images

    return list_images(Path(dataset.root) / split, dataset.class_names)


def validation_for(project, run, *, input_size: int | None = None, limit: int = GUARD_IMAGES):
    from .engine.guard import Validation

    size = input_size or run.architecture["input_size"]
    if project.task == Task.DETECTION:
        from .detection import detection_samples

        samples = detection_samples(project.dataset, limit)
    else:
        samples = (_classification_samples(project.dataset, "val")
                   or _classification_samples(project.dataset, "train"))[:limit]
    split = "val" if _has_val(project) else "train"
    return Validation(task=project.task, input_size=size, samples=samples,
                      num_classes=run.architecture["num_classes"], split=split)


def _has_val(project) -> bool:
    root = Path(project.dataset.root)
    if project.task == Task.DETECTION:
        return any((root / "images" / "val").glob("*"))
    return bool(_classification_samples(project.dataset, "val"))


def train_images(project, limit: int) -> list[Path]:
    """Calibration images: the project's train split, in a fixed shuffled order (so every class is in the first n)."""
    root = Path(project.dataset.root)
    if project.task == Task.DETECTION:
        images = sorted(p for p in (root / "images" / "train").glob("*") if p.is_file())
    else:
        images = [p for p, _ in _classification_samples(project.dataset, "train")]
    random.Random(0).shuffle(images)
    return images[:limit]


def calibration_for(project, input_size: int, limit: int):
    from .engine.converters.base import calibration_set

    images = train_images(project, limit)
    return calibration_set(images, split="train", task=project.task, input_size=input_size) if images else None


def torch_module(project, run):
    """The trained model in eval mode, as the ONNX export sees it (detection: the decoded-output copy). An imported
    model (deployment.imports) is its ONNX form, run by ONNX Runtime behind a module's call."""
    if is_imported(run):
        from .engine.model_import import onnx_module

        return onnx_module(imported_onnx(run))
    if project.task == Task.DETECTION:
        from .engine.detect_onnx import _export_copy, load_detector

        return _export_copy(load_detector(absolute(run.weights_path)))
    from training.hooks import trained_model

    return trained_model(run)  # the zoo model, or the network edited in the visualiser


def export_for(project, model, input_size: int, path: Path) -> Path:
    if project.task == Task.DETECTION:
        from .engine.detect_onnx import export_detector_onnx

        return export_detector_onnx(model, input_size=input_size, path=path)
    from .engine.onnx_export import export_onnx

    return export_onnx(model, input_size=input_size, path=path)


# --- convert: the project's engine × precision, through the guard --------------------------------------------


RKNN_PLATFORMS = ("rk3566", "rk3568", "rk3588")


def device_target_options(device, engine: str) -> dict:
    """What the engine must know of the target device: TVM compiles for the device's CPU architecture (an aarch64
    board gets a cross-compiled library), RKNN for the Rockchip SoC its catalog entry names."""
    if engine == "tvm" and device.cpu_arch == "aarch64":
        return {"target": "aarch64"}
    if engine == "rknn":
        named = f"{device.cpu_name} {device.accelerator_name}".lower()
        return next(({"platform": p} for p in RKNN_PLATFORMS if p in named), {})
    return {}


def convert_target(job, run, *, onnx_artifact: Artifact, report) -> dict:
    """Build the project's engine × precision from the verified ONNX, guarded; store it as an artifact.

    Returns the part of the stage result that says what was built and what the guard did."""
    from .engine.converters import registry
    from .engine.converters.base import EngineMissing, Source
    from .engine.guard import guarded_convert

    project = job.project
    engine, precision = project.engine, project.precision
    if (engine, precision) == ("onnxruntime", "fp32"):
        report("Target ONNX Runtime fp32: the verified ONNX model is the artifact.")
        return {"target": {"artifact": onnx_artifact.pk, "engine": engine, "precision": precision, "guard": None}}
    try:
        if why := registry.converter_for(engine).missing():  # e.g. a side environment not installed here
            raise EngineMissing(why)
    except EngineMissing as missing:
        report(f"{missing} The ONNX model made here is the hand-over format its toolchain imports.")
        return {"target": {"artifact": None, "engine": engine, "precision": precision, "note": str(missing)}}
    input_size = run.architecture["input_size"]
    model = torch_module(project, run)
    source = Source(onnx_path=absolute(onnx_artifact.path), task=project.task, input_size=input_size,
                    torch_model=model, reference_name=reference_name(run))
    validation = validation_for(project, run)
    tolerance = tolerance_of(project)
    from .engine.benchmark import torch_eager_loader

    reference = validation.evaluate(torch_eager_loader(model)())
    report(f"Accuracy guard: {source.reference_name} on {len(validation.samples)} {validation.split} images: "
           + ", ".join(f"{k} {v:.2f}%" for k, v in reference.items() if k != "n_images")
           + f"; tolerance {tolerance:g} point(s).", progress=60)
    outcome = guarded_convert(
        engine, source, precision=precision, out_dir=job_dir(job, keep=True) / "engine", validation=validation,
        reference=reference, calibration=calibration_for(project, input_size, CALIBRATION_IMAGES),
        more_calibration=calibration_for(project, input_size, MORE_CALIBRATION_IMAGES), tolerance=tolerance,
        report=report, target_options=device_target_options(project.device, engine))
    report(outcome.summary(), progress=95)
    if not outcome.passed:
        raise StageError(outcome.summary() + " See the log for each attempt.")
    artifact = outcome.artifact
    row = Artifact.objects.create(
        project=project, job=job, training_run=run, kind=KIND_OF_ENGINE[engine], engine=engine,
        precision=artifact.precision, path=relative(artifact.path), size_bytes=artifact.size_bytes,
        sha256=sha256_file(artifact.path), status=Artifact.Status.VERIFIED, runs=runs_of(artifact),
        checks={"conversion": artifact.as_dict(), "guard": outcome.as_dict(), "target": True})
    return {"target": {"artifact": row.pk, "engine": engine, "precision": artifact.precision, "asked": precision,
                       "status": artifact.status, "guard": outcome.as_dict(), "file": artifact.path.name,
                       "size_mb": round(artifact.size_bytes / 1e6, 2), "notes": list(artifact.notes)}}


def runs_of(converted) -> str:
    """Where a converter's artifact runs, as the stored artifact's `runs` field says it."""
    return Artifact.Runs.of(runs_here=converted.runs_here, builds_on_device=converted.builds_on_device)


# --- benchmark: every artifact that runs here, stored as the recommender's records ----------------------------


def engine_artifact(row: Artifact):
    """The converter's view of a stored artifact (to load it with its own runtime)."""
    from .engine.converters.base import Artifact as Converted

    conversion = row.checks["conversion"]
    path = absolute(row.path)
    return Converted(engine=row.engine, precision=row.precision, path=path,
                     files=[path.with_name(name) for name in conversion["files"]], task=conversion["task"],
                     input_size=conversion["input_size"], runs_here=row.runs == Artifact.Runs.HERE,
                     builds_on_device=row.builds_on_device,
                     converter_versions=conversion["converter_versions"], calibration=conversion["calibration"],
                     options=conversion["options"])


def loader_for(row: Artifact, project, threads: int):
    """() -> runner for a stored artifact, or None when it does not run here (a build kit, a device-only file, a
    bundle)."""
    from .engine.benchmark import ArtifactLoader

    if row.runs != Artifact.Runs.HERE or row.kind == Artifact.Kind.BUNDLE:
        return None
    if row.kind == Artifact.Kind.PYTORCH:
        from .engine.benchmark import torch_eager_loader

        return torch_eager_loader(torch_module(project, row.training_run), threads)
    if row.kind == Artifact.Kind.ONNX and "conversion" not in row.checks:
        from .engine.converters.base import Artifact as Converted

        path = absolute(row.path)
        size = row.training_run.architecture["input_size"]
        converted = Converted(engine="onnxruntime", precision="fp32", path=path, files=[path], task=project.task,
                              input_size=size)
        return ArtifactLoader(converted, threads)  # picklable: timed in a process of its own
    if "conversion" in row.checks:
        return ArtifactLoader(engine_artifact(row), threads)
    return None


def record(project, row: Artifact, figures: dict, validation, report) -> bool:
    """Store the measurement as the recommender's record of this server (it learns from it); whether it was."""
    from .engine.benchmark import record_details, record_latency_ms

    store = device_catalog().record_benchmark
    if store is None:
        return False
    run = row.training_run
    if is_imported(run):  # the recommender learns the zoo's models, whose layers it can profile
        report(f"{row.get_kind_display()}: an imported model is not stored as a recommender record; its figures "
               "stand here.")
        return False
    accuracy = figures.get("accuracy", {}).get(validation.primary)
    try:
        store(engine="pytorch" if row.kind == Artifact.Kind.PYTORCH else row.engine, precision=row.precision,
              model_name=run.model_name, num_classes=run.architecture["num_classes"],
              input_size=run.architecture["input_size"], latency_ms=record_latency_ms(figures),
              memory_mb=figures.get("peak_memory_mb"), accuracy=accuracy, team=project.team, project=project,
              details=record_details(figures, artifact=row.pk, kind=row.kind))
    except Exception as error:  # a model the catalog cannot profile (an imported one): the figures still stand
        report(f"{row.get_kind_display()}: not stored as a recommender record ({type(error).__name__}: {error}).")
        return False
    return True


def benchmark_artifacts(job, artifacts: list[Artifact], report) -> dict:
    """Measure every artifact that runs here (batch-1 latency p50/p90/p99, throughput, peak memory, size,
    accuracy on the validation split) and store each as a recommender record of this server."""
    from .engine.benchmark import RECORD_THREADS, measure
    from .engine.guard import delta

    project = job.project
    run = artifacts[0].training_run
    validation = validation_for(project, run)
    host = host_label()
    # This_Server (the catalog's row for the portal's own server) is the one target measured where it runs
    on_target = project.device.is_host
    report(f"Measuring on this server, {host}: batch 1, {RECORD_THREADS} inference thread, after warm-up; "
           f"accuracy on {len(validation.samples)} {validation.split} images. "
           + ("This server is the project's target device." if on_target
              else "These are host figures, not the target device's."))
    rows, recorded = [], 0
    for index, row in enumerate(artifacts):
        load = loader_for(row, project, RECORD_THREADS)
        if load is None:
            report(f"{row.get_kind_display()} ({row.engine} {row.precision}): {row.get_runs_display().lower()}; "
                   "not measured here.")
            continue
        figures = measure(load, input_size=run.architecture["input_size"], validation=validation,
                          file_bytes=row.size_bytes, report=report)
        accuracy = figures["accuracy"]
        legacy = ({"map50": accuracy["map50"] / 100, "map50_95": accuracy["map50_95"] / 100}
                  if project.task == Task.DETECTION else {"top1": accuracy["top1"] / 100})
        row.benchmark = {**figures, **legacy, "host": host}
        row.save(update_fields=["benchmark"])
        recorded += record(project, row, figures, validation, report)
        rows.append({"artifact": row.pk, "kind": row.get_kind_display(), "engine": row.engine,
                     "precision": row.precision, "size_mb": round(row.size_bytes / 1e6, 2),
                     "n_images": accuracy["n_images"], **legacy, **{k: v for k, v in figures.items()
                                                                    if k != "accuracy"}, "accuracy": accuracy})
        shown = ", ".join(f"{k} {v:.2f}%" for k, v in accuracy.items() if k != "n_images")
        report(f"{row.get_kind_display()} ({row.engine} {row.precision}): p50 {figures['latency_p50_ms']:.2f} ms, "
               f"p99 {figures['latency_p99_ms']:.2f} ms, {figures['throughput_ips']:.0f} images/s, {shown}",
               progress=100 * (index + 1) / len(artifacts))
    # An imported model has no PyTorch weights: its rows compare with the model as imported (its fp32 ONNX form),
    # where every speed-up and accuracy delta read "—" before.
    imported = is_imported(run)
    base = next((r for r in rows if r["kind"] == Artifact.Kind.PYTORCH.label
                 or (imported and r["kind"] == Artifact.Kind.ONNX.label and r["precision"] == "fp32")), None)
    if base is not None:
        for r in rows:
            r["speedup"] = round(base["latency_p50_ms"] / r["latency_p50_ms"], 2)
            r["delta"] = delta(base["accuracy"], r["accuracy"], validation.metric_names, digits=2)
    return {"task": project.task, "rows": rows, "host": host, "latency_budget_ms": project.latency_budget_ms,
            "device": project.device.name, "on_target": on_target, "metric": validation.primary,
            "baseline": base and ("the imported model (ONNX fp32)" if imported else "the PyTorch weights"),
            "recorded": recorded}


# --- the live Table 2 (the optional compare stage) ------------------------------------------------------------


def compare_stage(job, report) -> dict:
    """Every engine × precision that runs here at two input sizes, through the guard, against PyTorch eager."""
    from projects.jobs.selectors import latest_succeeded
    from training.models import TrainingRun

    from .engine.compare import chart, compare, second_size
    from .engine.converters.base import Source

    project = job.project
    run = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    model = torch_module(project, run)
    tolerance = tolerance_of(project)
    folder = job_dir(job)
    tables = []
    sizes = second_size(project.task, run.architecture["input_size"])
    imported = is_imported(run)
    if imported:
        from .engine.model_import import fixed_side

        if fixed_side(imported_onnx(run)):  # a model exported for one size is compared at that size alone
            sizes = [run.architecture["input_size"]]
    baseline = baseline_label(run)
    report(f"The paper's Table 2 on this server ({host_label()}): {baseline} against every engine × precision "
           f"that runs here, at {' and '.join(map(str, sizes))} px; every artifact passes the accuracy guard "
           f"(±{tolerance:g} point) first.")
    for index, size in enumerate(sizes):
        if imported:  # its ONNX form is the source; tracing the module that runs it in ONNX Runtime gave a graph
            # with no input (the session's answer became a constant), and every engine's row failed on it
            onnx_path = Path(shutil.copyfile(imported_onnx(run), folder / f"model-{size}.onnx"))
        else:
            onnx_path = export_for(project, model, size, folder / f"model-{size}.onnx")
        source = Source(onnx_path=onnx_path, task=project.task, input_size=size, torch_model=model,
                        reference_name=reference_name(run))
        validation = validation_for(project, run, input_size=size, limit=COMPARE_IMAGES)
        table = compare(source=source, validation=validation, calibration=calibration_for(project, size, 64),
                        more_calibration=calibration_for(project, size, 300), out_dir=folder / f"size-{size}",
                        tolerance=tolerance, report=report, engines=project.options.get("compare_engines"),
                        measure_kwargs={"max_runs": 50, "max_seconds": 4.0},
                        progress=lambda done, index=index: report(None, progress=100 * (index + done) / len(sizes)),
                        baseline=baseline)
        tables.append(table)
    return {"task": project.task, "tables": tables, "chart": chart(tables), "host": host_label(),
            "tolerance": tolerance, "trained_size": run.architecture["input_size"], "baseline": baseline,
            "imported": imported}
