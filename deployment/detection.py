"""Convert and benchmark for detection projects: the Django shell around deployment.engine's detection modules (ONNX
export and parity, detection latency + mAP50). The bundle is deployment.packaging's, for both tasks."""

import platform
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
    if project.precision != "fp32":
        report(f"{project.precision} is not available for detection models in this version; artifacts are fp32.")
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
    report("ONNX artifact verified against PyTorch: same boxes after NMS, same mAP50.", progress=100)
    return {"task": "detection", "artifacts": [pytorch.pk, onnx_artifact.pk], "parity": parity,
            "onnx_mb": round(onnx_artifact.size_bytes / 1e6, 2), "pytorch_mb": round(pytorch.size_bytes / 1e6, 2)}


def _runner(artifact: Artifact):
    if artifact.kind == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(absolute(artifact.path)), providers=["CPUExecutionProvider"])
        return lambda batch: session.run(None, {session.get_inputs()[0].name: batch})
    import torch

    from .engine.detect_onnx import _export_copy, load_detector

    model = _export_copy(load_detector(absolute(artifact.path)))

    def run(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run


def detection_benchmark_stage(job, report) -> dict:
    from .engine.detect_measure import measure_detector

    project = job.project
    artifacts = list(latest_succeeded(project, "convert").artifacts.filter(status="verified").order_by("id"))
    if not artifacts:
        raise StageError("The last conversion left no verified artifact.")
    samples = detection_samples(project.dataset, MEASURE_IMAGES)
    host = f"{platform.node()} ({platform.machine()}, {platform.processor() or 'CPU'})"
    report(f"Measuring on this server, {host}: latency at batch 1 and mAP50 on {len(samples)} validation images. "
           "These are host figures, not the target device's.")
    rows = []
    for index, artifact in enumerate(artifacts):
        run = artifact.training_run
        figures = measure_detector(run=_runner(artifact), input_size=run.architecture["input_size"], samples=samples,
                                   num_classes=run.architecture["num_classes"], report=report)
        artifact.benchmark = {**figures, "host": host}
        artifact.save(update_fields=["benchmark"])
        rows.append({"artifact": artifact.pk, "kind": artifact.get_kind_display(), "engine": artifact.engine,
                     "size_mb": round(artifact.size_bytes / 1e6, 2), **figures})
        report(f"{artifact.get_kind_display()}: p50 {figures['latency_p50_ms']:.2f} ms, "
               f"p95 {figures['latency_p95_ms']:.2f} ms, mAP50 {figures['map50']:.3f}",
               progress=100 * (index + 1) / len(artifacts))
    return {"task": "detection", "rows": rows, "host": host, "latency_budget_ms": project.latency_budget_ms,
            "device": project.device.name}
