"""The package stage: the bundle for the project's device tier, built from the artifact the portal picked and
checked by unpacking it and running its smoke test (and its server, for PC, cloud and K8S). The Django shell around
deployment.engine.bundle; classification and detection alike."""

from pathlib import Path

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Task
from tango_common.hashing import sha256_file

from .imports import reference_name
from .models import Artifact

RUNNABLE = (Artifact.Status.VERIFIED, Artifact.Status.ACCEPTED)

SAMPLES = 4  # sample images the bundle's smoke test runs
# artifact engine -> the bundle's runtime (engine.bundle.RUNTIMES); the order is the fallback order
RUNTIME_OF_ENGINE = {"onnxruntime": "onnxruntime", "openvino": "openvino", "pytorch": "torchscript",
                     "tensorrt": "tensorrt", "tflite": "tflite", "rknn": "rknn", "tvm": "tvm"}


def bundle_runtime(artifact: Artifact) -> tuple[str, dict[str, Path]] | None:
    """(runtime key, {name in bundle: file here}) for an artifact a bundle can carry; None for one it cannot
    (PyTorch weights as a state dict need the model's code). A file only the device runs (RKNN's .rknn, TVM's
    aarch64 library) comes with the ONNX model it was built from, which runs off the device."""
    from .engine.bundle import HOST_MODEL

    path = absolute(artifact.path)
    conversion = (artifact.checks or {}).get("conversion") or {}
    if artifact.engine in ("rknn", "tvm") and path.suffix in (".rknn", ".so"):
        files = {f"model{path.suffix}": path}
        if device_arch(artifact) != "x86_64":  # built for the board: the check here runs the ONNX it came from
            source = source_onnx(artifact)
            if source is None:
                return None
            files[HOST_MODEL] = source
        return artifact.engine, files
    if artifact.engine == "openvino" and path.suffix == ".xml":
        return "openvino", {"model.xml": path, "model.bin": path.with_suffix(".bin")}
    if artifact.engine == "pytorch" and path.suffix == ".ts":
        return "torchscript", {"model.ts": path}
    if artifact.engine == "tensorrt":
        onnx = path if path.suffix == ".onnx" else path.with_name("model.onnx")
        files = {"model.onnx": onnx}
        for name in conversion.get("files", []):  # the build kit: trt_build.py, calibration images…
            if name not in files and (path.parent / name).is_file() and not name.endswith(".zip"):
                files[name] = path.parent / name
        return "tensorrt", files
    if artifact.engine == "tflite" and path.suffix == ".tflite":
        return "tflite", {"model.tflite": path}
    if artifact.engine == "onnxruntime" and path.suffix == ".onnx":
        return "onnxruntime", {"model.onnx": path}
    return None


def choose_artifact(project) -> Artifact:
    """The artifact the conversion built for the project's engine and precision and its accuracy guard passed (its
    "target"); else a verified one of that engine and precision, or of that engine in fp32; else the verified fp32
    ONNX model (which every device's toolchain imports)."""
    job = latest_succeeded(project, "convert")
    verified = [a for a in job.artifacts.filter(status=Artifact.Status.VERIFIED).order_by("id")
                if a.kind != Artifact.Kind.BUNDLE and bundle_runtime(a)]
    target = next((a for a in verified if (a.checks or {}).get("target")), None)
    if target is not None:
        return target
    for wanted in ((project.engine, project.precision), (project.engine, "fp32"), ("onnxruntime", "fp32")):
        for artifact in verified:
            if (artifact.engine, artifact.precision) == wanted:
                return artifact
    if verified:
        return verified[0]
    raise StageError("No verified artifact a bundle can carry (ONNX, OpenVINO, TorchScript, TensorRT, TFLite, RKNN "
                     "or TVM).")


def device_arch(artifact: Artifact) -> str:
    """The CPU architecture a model file only the device runs is built for: an RKNN file runs on a Rockchip board
    (aarch64); a TVM library on the target it was compiled for."""
    options = ((artifact.checks or {}).get("conversion") or {}).get("options") or {}
    if artifact.engine == "tvm" and options.get("target", "host") == "host":
        return "x86_64"
    return "aarch64"


def source_onnx(artifact: Artifact) -> Path | None:
    """The fp32 ONNX model the convert job exported and checked, which the engine's file was built from."""
    onnx = (artifact.job.artifacts.filter(kind=Artifact.Kind.ONNX, status__in=RUNNABLE)
            .exclude(checks__has_key="conversion").order_by("id").first())
    return absolute(onnx.path) if onnx is not None else None


def _target(device):
    from .engine.bundle import Target

    return Target(name=device.name, tier=device.tier, accelerator=device.accelerator_kind, cpu_arch=device.cpu_arch,
                  memory_mb=device.memory_mb)


def _reference_and_samples(project, artifact: Artifact):
    """(batch -> raw outputs of the reference model, sample images, class names, input size): the PyTorch model, or
    an imported model as it was imported (its ONNX form)."""
    from .engine.measure import torch_runner
    from .optimize import torch_module

    run = artifact.training_run
    arch = run.architecture
    reference = torch_runner(torch_module(project, run))
    if project.task == Task.DETECTION:
        from .detection import detection_samples

        images = [image for image, _ in detection_samples(project.dataset, 64)]
    else:
        from .services import _val_samples

        images = [image for image, _ in _val_samples(project.dataset, 1000)]
    step = max(1, len(images) // SAMPLES)  # spread over the split (and so over the classes)
    return reference, images[::step][:SAMPLES], arch["class_names"], arch["input_size"]


def _check_sentences(project, artifact: Artifact) -> list[str]:
    lines = []
    run = artifact.training_run
    reference = reference_name(run)
    if project.task == Task.DETECTION:
        if run.metrics.get("map50") is not None:
            lines.append(f"mAP50 of the trained model on the validation split: {100 * run.metrics['map50']:.1f}%.")
    elif run.metrics.get("best_top1") is not None:
        lines.append(f"Top-1 accuracy of the trained model on the validation split: "
                     f"{100 * run.metrics['best_top1']:.1f}%.")
    bench = artifact.benchmark or {}
    if bench.get("latency_p50_ms") is not None:
        accuracy = bench.get("top1", bench.get("map50"))
        measured = f", accuracy {100 * accuracy:.1f}%" if accuracy is not None else ""
        where = "the target device" if project.device.is_host else "not the target device"
        lines.append(f"{artifact.engine} {artifact.precision} on the portal's server ({bench.get('host', 'CPU')}; "
                     f"{where}): median latency {bench['latency_p50_ms']:.2f} ms at batch 1{measured}.")
    parity = (artifact.checks or {}).get("parity") or {}
    if parity.get("n_images"):
        lines.append(f"Checked against {reference} on {parity['n_images']} validation images before packaging.")
    lines.append(f"The smoke test's sample images were answered by {reference} when the bundle was made; "
                 f"the bundle's own engine ({artifact.engine} {artifact.precision}) must give the same answers.")
    return lines


def package_stage(job, report) -> dict:
    from .engine.bundle import HOST_MODEL, RUNTIMES, Tier, build_tier_bundle, check_tier_bundle

    project = job.project
    artifact = choose_artifact(project)
    runtime, files = bundle_runtime(artifact)
    device = project.device
    tier = device.tier if device.tier in Tier.ALL else Tier.ON_DEVICE
    checks = _check_sentences(project, artifact)
    device_note = ""
    if HOST_MODEL in files and runtime in ("rknn", "tvm"):
        model_file = next(iter(files))
        device_note = (f"{model_file} ({artifact.engine} {artifact.precision}) runs only on the device, through the "
                       f"runtime requirements.txt installs there; the smoke test here ran {HOST_MODEL}, the network "
                       "it was built from, on ONNX Runtime.")
        report(device_note)
        checks.append(f"{model_file} was checked on this server as the convert stage's log says; the bundle's smoke "
                      f"test here ran {HOST_MODEL} (ONNX Runtime), and runs {model_file} on the device.")
    if (artifact.engine, artifact.precision) != (project.engine, project.precision):
        report(f"No verified {project.engine} {project.precision} artifact; packaging {artifact.engine} "
               f"{artifact.precision} instead.")
    report(f"Packaging {artifact.engine} {artifact.precision} for {device.name} ({device.get_tier_display()} tier): "
           f"runs on {RUNTIMES[runtime].label}.", progress=5)
    reference, samples, class_names, input_size = _reference_and_samples(project, artifact)
    # OpenVINO: the bundle computes at the precision the guard and the benchmark ran (bf16, or an int8 model's
    # float layers in bf16), stated in preprocess.json; left out, its runtime.py would compile in f32
    hint = (artifact.checks or {}).get("conversion", {}).get("options", {}).get("inference_precision_hint")
    extra_config = {"inference_precision": hint} if runtime == "openvino" and hint else None
    slug = _slug(project.name)
    out = job_dir(job) / f"{slug}-{tier.replace('_', '-')}-bundle.zip"
    build_tier_bundle(
        out_path=out, task=project.task, tier=tier, runtime=runtime, model_files=files, class_names=class_names,
        input_size=input_size, target=_target(device), reference=reference, samples=samples,
        precision=artifact.precision, slug=slug, checks=checks, extra_config=extra_config,
        reference_name=reference_name(artifact.training_run),
        device_arch=device_arch(artifact) if runtime in ("rknn", "tvm") else None,
        device_versions=(artifact.checks or {}).get("conversion", {}).get("converter_versions"),
        model_info={"name": f"{project.name}: {artifact.training_run.model_name}", "project": project.name})
    report(f"Bundle written: {out.name}, {out.stat().st_size / 1e6:.1f} MB.", progress=50)
    check = check_tier_bundle(out, tier=tier, report=report, python=_bundle_python(runtime))
    check.update({"runtime": runtime, "source_artifact": artifact.pk})
    if artifact.builds_on_device:  # the smoke test ran the kit's model.onnx through runtime_host.py
        check["note"] = ("ONNX checked here with ONNX Runtime; the TensorRT engine is built and measured on the "
                         "device (python3 trt_build.py there).")
        report(check["note"])
    bundle = Artifact.objects.create(
        project=project, job=job, training_run=artifact.training_run, kind=Artifact.Kind.BUNDLE,
        engine=artifact.engine, precision=artifact.precision, path=relative(out), size_bytes=out.stat().st_size,
        sha256=sha256_file(out), status=Artifact.Status.VERIFIED if check["passed"] else Artifact.Status.FAILED,
        runs=artifact.runs, checks=check)
    if not check["passed"]:
        raise StageError("The unpacked bundle failed its own checks (" + ", ".join(check["ran"]) + "); it is marked "
                         "failed. " + " ".join((check.get("smoke_test") or [])[-2:]))
    report(f"Bundle verified: ran {', '.join(check['ran'])} in the unpacked bundle.", progress=100)
    return {"task": project.task, "bundle": bundle.pk, "file": bundle.file_name, "tier": tier,
            "tier_label": device.get_tier_display(), "runtime": RUNTIMES[runtime].label, "engine": artifact.engine,
            "precision": artifact.precision, "size_mb": round(bundle.size_bytes / 1e6, 2), "sha256": bundle.sha256,
            "files": check["files"], "ran": check["ran"], "note": check.get("note", ""),
            "device_note": device_note}


def _bundle_python(runtime: str) -> str | None:
    """The interpreter that checks the unpacked bundle: the portal's, or the engine's own environment's (TFLite's
    interpreter lives there, not in the portal)."""
    from .engine.bundle import RUNTIMES

    side = RUNTIMES[runtime].side_env
    if side is None:
        return None
    from tango_common.sideenvs import SIDE_ENVS

    return str(SIDE_ENVS[side].interpreter)


def _slug(name: str) -> str:
    """The bundle's file name and Kubernetes name: ASCII letters, digits and '-', at most 40. Any letter used to
    pass (isalnum), and a project named in 100 CJK characters made a file name past 255 bytes: the package stage failed
    with "File name too long"."""
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())[:40].strip("-") or "project"
