"""Convert and benchmark stages: the Django shell around deployment.engine (packaging: deployment.packaging)."""

from pathlib import Path

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Precision, Task
from tango_common.engines import ENGINES
from tango_common.hashing import sha256_file
from training.models import TrainingRun

from .imports import is_imported
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
    from .engine.onnx_export import check_parity, export_onnx, parity_ok, parity_text

    project = job.project
    trained = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    if is_imported(trained):  # brought by the team, not trained here
        from .imports import imported_convert_stage

        return imported_convert_stage(job, trained, report)
    if project.task == Task.DETECTION:
        from .detection import detection_convert_stage

        return detection_convert_stage(job, report)
    run = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    report(f"Target: {ENGINES[project.engine].label} {project.precision}. First the verified fp32 ONNX model every "
           "engine starts from.")
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
    if not ok:  # a readable reason, and what was measured kept on the job: the page offers to accept it anyway
        raise StageError(f"ONNX Runtime disagrees with PyTorch: {parity_text(parity)}. The ONNX artifact is marked "
                         "failed. Retry, or accept it anyway if the difference does not matter to you (your name and "
                         "reason are recorded).",
                         result={"artifacts": [pytorch.pk, onnx_artifact.pk], "parity": parity, "parity_failed": True,
                                 "onnx_artifact": onnx_artifact.pk, "onnx_mb": round(onnx_artifact.size_bytes / 1e6, 2),
                                 "pytorch_mb": round(pytorch.size_bytes / 1e6, 2)})
    report("ONNX artifact verified against PyTorch.", progress=50)
    from .optimize import convert_target

    target = convert_target(job, run, onnx_artifact=onnx_artifact, report=report)
    report(None, progress=100)
    artifacts = [pytorch.pk, onnx_artifact.pk]
    if target["target"].get("artifact") not in (None, onnx_artifact.pk):
        artifacts.append(target["target"]["artifact"])
    return {"artifacts": artifacts, "parity": parity, **target,
            "onnx_mb": round(onnx_artifact.size_bytes / 1e6, 2), "pytorch_mb": round(pytorch.size_bytes / 1e6, 2)}


def _converted(project) -> list[Artifact]:
    job = latest_succeeded(project, "convert")
    artifacts = list(job.artifacts.filter(  # verified, or accepted by a user over a failed parity check
        status__in=[Artifact.Status.VERIFIED, Artifact.Status.ACCEPTED]).order_by("id"))
    if not artifacts:
        raise StageError("The last conversion left no verified artifact.")
    return artifacts


def benchmark_stage(job, report) -> dict:
    from .optimize import benchmark_artifacts

    project = job.project
    if project.task == Task.DETECTION:
        from .detection import detection_benchmark_stage

        return detection_benchmark_stage(job, report)
    return benchmark_artifacts(job, _converted(project), report)
