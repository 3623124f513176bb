"""Convert and benchmark for detection projects: the Django shell around deployment.engine's detection modules (ONNX
export and parity, detection latency + mAP50). The bundle is deployment.packaging's, for both tasks."""

from pathlib import Path

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Precision
from tango_common.hashing import sha256_file
from training.models import TrainingRun

from .models import Artifact

PARITY_IMAGES = 200  # validation images compared between PyTorch and ONNX Runtime
MEASURE_IMAGES = 500


def detection_samples(dataset, limit: int) -> list[tuple[Path, Path]]:
    """(image, label file) pairs of the validation split (train when val is empty), in name order."""
    root = Path(dataset.root)
    for split in ("val", "train"):
        images = sorted(p for p in (root / "images" / split).glob("*") if p.is_file())
        if images:
            return [(p, root / "labels" / split / f"{p.stem}.txt") for p in images[:limit]]
    raise StageError("The dataset has no images to check the model on.")


def _artifact(job, run, *, kind: str, engine: str, path: Path, status: str, checks: dict) -> Artifact:
    return Artifact.objects.create(
        project=job.project, job=job, training_run=run, kind=kind, engine=engine, precision=Precision.FP32,
        path=relative(path), size_bytes=path.stat().st_size, sha256=sha256_file(path), status=status, checks=checks,
    )


def detection_convert_stage(job, report) -> dict:
    from .engine.detect_onnx import check_detection_parity, detection_parity_ok, export_detector_onnx, load_detector

    project = job.project
    run = TrainingRun.objects.get(job=latest_succeeded(project, "train"))
    input_size = run.architecture["input_size"]
    weights = absolute(run.weights_path)
    model = load_detector(weights)
    pytorch = _artifact(job, run, kind="pytorch", engine="pytorch", path=weights, status="verified",
                        checks={"val_map50": run.metrics.get("map50"), "how": "ultralytics validation of best.pt"})
    report(f"PyTorch checkpoint: {pytorch.size_bytes / 1e6:.1f} MB, sha256 {pytorch.sha256[:12]}…", progress=20)
    onnx_path = export_detector_onnx(model, input_size=input_size, path=job_dir(job) / "model.onnx")
    report(f"Exported ONNX (opset 17, one file) to {onnx_path.name}: {onnx_path.stat().st_size / 1e6:.1f} MB.",
           progress=50)
    parity = check_detection_parity(model, onnx_path, detection_samples(project.dataset, PARITY_IMAGES),
                                    input_size=input_size, report=report)
    ok = detection_parity_ok(parity)
    onnx_artifact = _artifact(job, run, kind="onnx", engine="onnxruntime", path=onnx_path,
                              status="verified" if ok else "failed",
                              checks={"parity": parity, "runtime": "onnxruntime CPUExecutionProvider"})
    if not ok:
        raise StageError(f"ONNX Runtime disagrees with PyTorch: {parity['boxes_matched']}/{parity['boxes_compared']} "
                         f"boxes agree, mAP50 {parity['map50_torch']:.4f} against {parity['map50_onnx']:.4f}. "
                         "The ONNX artifact is marked failed.")
    report("ONNX artifact verified against PyTorch: same boxes after NMS, same mAP50.", progress=50)
    from .optimize import convert_target

    target = convert_target(job, run, onnx_artifact=onnx_artifact, report=report)
    report(None, progress=100)
    artifacts = [pytorch.pk, onnx_artifact.pk]
    if target["target"].get("artifact") not in (None, onnx_artifact.pk):
        artifacts.append(target["target"]["artifact"])
    return {"task": "detection", "artifacts": artifacts, "parity": parity, **target,
            "onnx_mb": round(onnx_artifact.size_bytes / 1e6, 2), "pytorch_mb": round(pytorch.size_bytes / 1e6, 2)}


def detection_benchmark_stage(job, report) -> dict:
    from .optimize import benchmark_artifacts

    project = job.project
    artifacts = list(latest_succeeded(project, "convert").artifacts.filter(status="verified").order_by("id"))
    if not artifacts:
        raise StageError("The last conversion left no verified artifact.")
    return benchmark_artifacts(job, artifacts, report)
