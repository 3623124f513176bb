"""Convert and benchmark stages: the Django shell around deployment.engine (packaging: deployment.packaging)."""

import platform
from pathlib import Path

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Precision, Task
from tango_common.engines import ENGINES
from tango_common.hashing import sha256_file
from training.models import TrainingRun

from .models import Artifact

PARITY_IMAGES = 512  # validation images compared between PyTorch and ONNX Runtime


def _val_samples(dataset, limit: int) -> list[tuple[Path, int]]:
    """(image, class index) pairs of the validation split, or of train when a class-poor split left val empty."""
    from training.engine.data import list_images

    samples = list_images(dataset.root / "val", dataset.class_names) or list_images(dataset.root / "train",
                                                                                     dataset.class_names)
    return samples[:limit]


def _val_images(dataset, limit: int) -> list[Path]:
    return [path for path, _ in _val_samples(dataset, limit)]


def _load_trained_model(run: TrainingRun):
    from training.hooks import trained_model

    return trained_model(run)  # the zoo model, or the network edited in the visualiser


def _artifact(job, run, *, kind, path: Path, status, checks=None) -> Artifact:
    return Artifact.objects.create(
        project=job.project, job=job, training_run=run, kind=kind,
        engine="pytorch" if kind == Artifact.Kind.PYTORCH else "onnxruntime", precision=Precision.FP32,
        path=relative(path), size_bytes=path.stat().st_size, sha256=sha256_file(path), status=status,
        checks=checks or {},
    )


def _verified_if(ok: bool) -> str:
    return Artifact.Status.VERIFIED if ok else Artifact.Status.FAILED


def convert_stage(job, report) -> dict:
    from .engine.onnx_export import check_parity, export_onnx, parity_ok

    project = job.project
    trained = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    if (trained.architecture or {}).get("imported"):  # brought by the team, not trained here
        from .imports import imported_convert_stage

        return imported_convert_stage(job, trained, report)
    if project.task == Task.DETECTION:
        from .detection import detection_convert_stage

        return detection_convert_stage(job, report)
    run = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    engine = ENGINES[project.engine]
    if project.engine not in ("pytorch", "onnxruntime"):
        report(f"{engine.label} builds are not available in this version; the ONNX model made here is the "
               f"hand-over format a {engine.label} toolchain imports.")
    if project.precision != Precision.FP32:
        report(f"{project.precision} quantisation is not available in this version; artifacts are fp32.")
    model = _load_trained_model(run)
    weights = absolute(run.weights_path)
    pytorch = _artifact(job, run, kind=Artifact.Kind.PYTORCH, path=weights, status=Artifact.Status.VERIFIED,
                        checks={"val_top1": run.metrics.get("best_top1"), "how": "evaluated on the validation split"})
    report(f"PyTorch weights: {pytorch.size_bytes / 1e6:.1f} MB, sha256 {pytorch.sha256[:12]}…", progress=20)
    onnx_path = export_onnx(model, input_size=run.architecture["input_size"], path=job_dir(job) / "model.onnx")
    report(f"Exported ONNX (opset 17) to {onnx_path.name}: {onnx_path.stat().st_size / 1e6:.1f} MB.", progress=50)
    images = _val_images(project.dataset, PARITY_IMAGES)
    parity = check_parity(model, onnx_path, images, input_size=run.architecture["input_size"], report=report)
    ok = parity_ok(parity)
    onnx_artifact = _artifact(job, run, kind=Artifact.Kind.ONNX, path=onnx_path, status=_verified_if(ok),
                              checks={"parity": parity, "runtime": "onnxruntime CPUExecutionProvider"})
    if not ok:
        raise StageError(f"ONNX Runtime disagrees with PyTorch: max |diff| {parity['max_abs_diff']:.2e}, "
                         f"top-1 agreement {100 * parity['top1_agreement']:.1f}%. The ONNX artifact is marked failed.")
    report("ONNX artifact verified against PyTorch.", progress=100)
    return {"artifacts": [pytorch.pk, onnx_artifact.pk], "parity": parity,
            "onnx_mb": round(onnx_artifact.size_bytes / 1e6, 2), "pytorch_mb": round(pytorch.size_bytes / 1e6, 2)}


def _converted(project) -> list[Artifact]:
    job = latest_succeeded(project, "convert")
    artifacts = list(job.artifacts.filter(status=Artifact.Status.VERIFIED).order_by("id"))
    if not artifacts:
        raise StageError("The last conversion left no verified artifact.")
    return artifacts


def _artifact_runner(artifact: Artifact):
    """batch -> logits for the artifact on its own runtime; the PyTorch model is built here, where the zoo is."""
    from .engine.measure import onnx_runner, torch_runner

    if artifact.kind == Artifact.Kind.ONNX:
        return onnx_runner(absolute(artifact.path))
    if artifact.kind == Artifact.Kind.PYTORCH:
        return torch_runner(_load_trained_model(artifact.training_run))
    raise StageError(f"Cannot run a {artifact.get_kind_display()} here.")


def benchmark_stage(job, report) -> dict:
    from .engine.measure import measure_artifact

    project = job.project
    if project.task == Task.DETECTION:
        from .detection import detection_benchmark_stage

        return detection_benchmark_stage(job, report)
    artifacts = _converted(project)
    samples = _val_samples(project.dataset, 1000)
    host = f"{platform.node()} ({platform.machine()}, {platform.processor() or 'CPU'})"
    report(f"Measuring on this server, {host}: latency at batch 1 and top-1 on {len(samples)} validation images. "
           f"These are host figures, not the target device's.")
    rows = []
    for index, artifact in enumerate(artifacts):
        figures = measure_artifact(run=_artifact_runner(artifact),
                                   input_size=artifact.training_run.architecture["input_size"], samples=samples,
                                   report=report)
        artifact.benchmark = {**figures, "host": host}
        artifact.save(update_fields=["benchmark"])
        rows.append({"artifact": artifact.pk, "kind": artifact.get_kind_display(), "engine": artifact.engine,
                     "size_mb": round(artifact.size_bytes / 1e6, 2), **figures})
        report(f"{artifact.get_kind_display()}: p50 {figures['latency_p50_ms']:.2f} ms, "
               f"p95 {figures['latency_p95_ms']:.2f} ms, top-1 {100 * figures['top1']:.1f}%",
               progress=100 * (index + 1) / len(artifacts))
    return {"rows": rows, "host": host, "latency_budget_ms": project.latency_budget_ms, "device": project.device.name}
