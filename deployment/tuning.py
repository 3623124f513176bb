"""The tune stage (optional, on demand): Apache TVM's MetaSchedule search for the project's model on this server's
CPU, within a trial and a time budget, reported honestly against the untuned TVM build and the model's baseline
(PyTorch eager for a model trained here; an imported one's in ONNX Runtime, named as the live Table 2 names it,
imports.baseline_label). The Django shell around deployment.engine.converters.tvm."""

import json

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from tango_common.hashing import sha256_file

from .imports import baseline_label, reference_name
from .models import KIND_OF_ENGINE, Artifact
from .optimize import runs_of, tolerance_of, torch_module, validation_for

TUNE_TRIALS = 64  # measured candidates in all, spread over the model's operator tasks
TUNE_SECONDS = 600.0  # the search's wall-clock budget
LATENCY_REPEAT = 20


def budget_of(project) -> tuple[int, float]:
    tune = (project.options or {}).get("tvm_tune") or {}
    return int(tune.get("trials", TUNE_TRIALS)), float(tune.get("seconds", TUNE_SECONDS))


def tune_stage(job, report) -> dict:
    from .engine.benchmark import torch_eager_loader
    from .engine.converters import registry
    from .engine.converters.base import Source
    from .engine.converters.tvm import TvmConverter, latency_ms

    project = job.project
    if why := TvmConverter().missing():
        raise StageError(f"Apache TVM cannot tune here: {why}")
    convert = latest_succeeded(project, "convert")
    onnx_row = convert.artifacts.filter(kind=Artifact.Kind.ONNX, status=Artifact.Status.VERIFIED).order_by("id").first()
    if onnx_row is None:
        raise StageError("The last conversion left no verified ONNX model to tune.")
    run = onnx_row.training_run
    input_size = run.architecture["input_size"]
    model = torch_module(project, run)
    source = Source(onnx_path=absolute(onnx_row.path), task=project.task, input_size=input_size, torch_model=model)
    trials, seconds = budget_of(project)
    out = job_dir(job, keep=True) / "tvm"
    report(f"Tuning with Apache TVM's MetaSchedule for this server's CPU: at most {trials} trials and "
           f"{seconds:.0f} s. First the untuned build, to compare against.", progress=5)
    untuned = registry.convert("tvm", source, precision="fp32", out_dir=out / "untuned", report=report)
    tuned = registry.convert("tvm", source, precision="fp32", out_dir=out / "tuned", report=report,
                             options={"tune_trials": trials, "tune_seconds": seconds})
    # torch_module runs what the baseline names: the PyTorch weights, or an imported model's ONNX in ONNX Runtime
    baseline, reference = baseline_label(run), reference_name(run)
    report(f"Measuring {baseline}, untuned and tuned TVM at batch 1 on this server…", progress=80)
    threads = 1
    latency = {  # "pytorch_ms" is the baseline's, whatever runs it: the key the API has always had
        "pytorch_ms": latency_ms(torch_eager_loader(model, threads)(), input_size, repeat=LATENCY_REPEAT),
        "untuned_ms": latency_ms(registry.load(untuned, threads=threads), input_size, repeat=LATENCY_REPEAT),
        "tuned_ms": latency_ms(registry.load(tuned, threads=threads), input_size, repeat=LATENCY_REPEAT),
    }
    latency = {k: round(v, 3) for k, v in latency.items()}
    latency["speedup_vs_untuned"] = round(latency["untuned_ms"] / latency["tuned_ms"], 2)
    latency["speedup_vs_pytorch"] = round(latency["pytorch_ms"] / latency["tuned_ms"], 2)
    validation = validation_for(project, run)
    scores = validation.evaluate(torch_eager_loader(model, threads)())
    accuracy = validation.evaluate(registry.load(tuned, threads=threads))
    metric = validation.primary
    drop = round(scores[metric] - accuracy[metric], 3)
    tuning = json.loads(tuned.path.with_suffix(".json").read_text())["tuning"]
    verdict = ("faster than" if latency["tuned_ms"] < latency["pytorch_ms"] else "slower than")
    report(f"Untuned TVM {latency['untuned_ms']:.2f} ms → tuned {latency['tuned_ms']:.2f} ms "
           f"({latency['speedup_vs_untuned']}× from {tuning['measured']} measured trials in {tuning['seconds']} s); "
           f"{baseline} {latency['pytorch_ms']:.2f} ms, so tuned TVM is {verdict} it here "
           f"({latency['speedup_vs_pytorch']}×). {metric} {accuracy[metric]:.2f}% vs {reference} "
           f"{scores[metric]:.2f}% on {accuracy['n_images']} images.", progress=95)
    ok = drop <= tolerance_of(project)
    row = Artifact.objects.create(
        project=project, job=job, training_run=run, kind=KIND_OF_ENGINE["tvm"], engine="tvm", precision="fp32",
        path=relative(tuned.path), size_bytes=tuned.size_bytes, sha256=sha256_file(tuned.path),
        status=Artifact.Status.VERIFIED if ok else Artifact.Status.FAILED, runs=runs_of(tuned),
        checks={"conversion": tuned.as_dict(), "tuning": tuning, "latency": latency,
                "accuracy": {"reference": scores, "tuned": accuracy, "drop": drop}})
    if not ok:
        raise StageError(f"The tuned TVM build lost {drop:.2f} points of {metric}; it is marked failed.")
    return {"artifact": row.pk, "latency": latency, "tuning": tuning, "metric": metric, "baseline": baseline,
            "reference_name": reference,
            "accuracy": {"reference": scores[metric], "tuned": accuracy[metric], "drop": drop},
            "budget": {"trials": trials, "seconds": seconds}}
