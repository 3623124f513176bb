"""Convert, benchmark and package stages: the Django shell around deployment.engine."""

import json
import subprocess
import sys
import tempfile
import zipfile
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
BUNDLE_CHECK_IMAGES = 16


def _val_samples(dataset, limit: int) -> list[tuple[Path, int]]:
    """(image, class index) pairs of the validation split, or of train when a class-poor split left val empty."""
    from training.engine.data import list_images

    samples = list_images(dataset.root / "val", dataset.class_names) or list_images(dataset.root / "train",
                                                                                     dataset.class_names)
    return samples[:limit]


def _val_images(dataset, limit: int) -> list[Path]:
    return [path for path, _ in _val_samples(dataset, limit)]


def _load_trained_model(run: TrainingRun):
    from training.engine.zoo import load_trained_model

    return load_trained_model(run.model_name, num_classes=run.architecture["num_classes"],
                              input_size=run.architecture["input_size"], weights_path=absolute(run.weights_path))


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
    if not ok:
        raise StageError(f"ONNX Runtime disagrees with PyTorch: max |diff| {parity['max_abs_diff']:.2e}, "
                         f"top-1 agreement {100 * parity['top1_agreement']:.1f}%. The ONNX artifact is marked failed.")
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
    artifacts = list(job.artifacts.filter(status=Artifact.Status.VERIFIED).order_by("id"))
    if not artifacts:
        raise StageError("The last conversion left no verified artifact.")
    return artifacts


def benchmark_stage(job, report) -> dict:
    from .optimize import benchmark_artifacts

    project = job.project
    result = benchmark_artifacts(job, _converted(project), report)
    return result


def package_stage(job, report) -> dict:
    from .engine.bundle import build_bundle

    project = job.project
    if project.task == Task.DETECTION:
        from .detection import detection_package_stage

        return detection_package_stage(job, report, slug=_slug(project.name))
    onnx = next((a for a in _converted(project) if a.kind == Artifact.Kind.ONNX), None)
    if onnx is None:
        raise StageError("No verified ONNX artifact to package.")
    run = onnx.training_run
    class_names = run.architecture["class_names"]
    input_size = run.architecture["input_size"]
    out = job_dir(job) / f"{_slug(project.name)}-bundle.zip"
    build_bundle(out_path=out, onnx_path=absolute(onnx.path), class_names=class_names, input_size=input_size,
                 model_info={"name": run.model_name, "project": project.name, "task": project.task,
                             "device": project.device.name, "engine": project.engine,
                             "params": run.architecture.get("params"), "flops": run.architecture.get("flops")},
                 metrics={"val_top1": run.metrics.get("best_top1"), "benchmark": onnx.benchmark or None})
    report(f"Bundle written: {out.name}, {out.stat().st_size / 1e6:.1f} MB.", progress=50)
    check = _check_bundle(out, absolute(onnx.path), _val_images(project.dataset, BUNDLE_CHECK_IMAGES),
                          input_size=input_size, class_names=class_names)
    bundle = _artifact(job, run, kind=Artifact.Kind.BUNDLE, path=out, status=_verified_if(check["agree"]),
                       checks=check)
    if not check["agree"]:
        raise StageError("The bundle's infer.py disagrees with the portal's predictions; the bundle is marked failed.")
    report(f"Bundle verified: its infer.py ran on {check['n_images']} images and matched the portal.", progress=100)
    return {"bundle": bundle.pk, "file": bundle.file_name, "size_mb": round(bundle.size_bytes / 1e6, 2),
            "sha256": bundle.sha256, "files": check["files"]}


def _check_bundle(bundle: Path, onnx_path: Path, images: list[Path], *, input_size: int, class_names) -> dict:
    """Unpack the bundle, run its infer.py as a user would, and compare with the portal's own predictions."""
    import onnxruntime as ort

    from .engine.bundle_infer import predict

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = [r["top"][0]["label"] for r in predict(session, images, input_size=input_size, labels=class_names)]
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(tmp)
            files = sorted(archive.namelist())
        done = subprocess.run([sys.executable, str(Path(tmp) / "infer.py"), *map(str, images), "--format", "json",
                               "--top-k", "1"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise StageError(f"The bundle's infer.py failed: {done.stderr.strip()[-500:]}")
    got = [r["top"][0]["label"] for r in json.loads(done.stdout)]
    return {"agree": got == expected, "n_images": len(images), "files": files}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "project"
