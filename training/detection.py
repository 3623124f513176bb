"""The train stage for detection projects: the Django shell around training.engine.yolo."""

import base64
import io
from pathlib import Path

import yaml
from django.conf import settings

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from tango_common.hashing import sha256_file

from .engine.quality import detection_verdict
from .engine.quality import summary as quality_summary
from .hooks import network_source
from .models import TrainingRun

# Defaults a detection project's options["train"] may override (declared in training.engine.options).
DEFAULT_DETECTION_TRAINING = {"epochs": 50, "batch": 16, "patience": 20, "workers": 0}
THUMBNAIL_SIDE = 320  # validation images shown on the page with their boxes


# A small set's run, at ultralytics' defaults, hardly trains: it accumulates the gradients of nbs = 64 images into
# each weight update, so 32 training images at batch 16 made one update every other epoch, 25 in 50 epochs. On 40
# photos of two kinds of object (YOLO11s, 256 px, from scratch) that run ended at mAP50 0.017; the same run at batch
# 8 with nbs 8 (an update per batch, 200 in all) ended at 0.968 (0.956 by epoch 32), in about the same time (1448 s and
# 1407 s on this 2-core host, the two beside each other).
SMALL_DETECTION_SET = 512  # training images under which an update per batch is the default (nbs = batch)


def detection_training_options(project) -> dict:
    from .services import user_training_options

    options = dict(DEFAULT_DETECTION_TRAINING)
    # Checked against the declaration: ultralytics' overrides are limited to its numeric hyperparameters, so no
    # option can point it at a file (a `model`, `data` or `project` path) of another team.
    user = user_training_options(project)
    options.update(user)
    n_train = sum(1 for _ in (Path(project.dataset.root) / "images" / "train").glob("*"))
    if n_train < SMALL_DETECTION_SET:  # what the user set stays as set
        if "batch" not in user:  # at least four batches an epoch
            options["batch"] = max(2, min(options["batch"], n_train // 4))
        overrides = dict(options.get("overrides") or {})
        overrides.setdefault("nbs", options["batch"])
        options["overrides"] = overrides
    return options


def detection_model_name(project, recommendation: dict | None = None) -> str:
    """The detector the train stage trains; `recommendation`: the recommend stage's result (the latest by default)."""
    from .engine.yolo.zoo import LABELS

    if recommendation is None:
        recommendation = latest_succeeded(project, "recommend").result or {}
    # The user's pick, else the ranking's top, else the paper's Table 1 choice for the device.
    name = (project.options.get("model") or recommendation.get("model")
            or (recommendation.get("paper") or {}).get("model"))
    if name not in LABELS:
        raise StageError(f"{name!r} is not a detection model; choose one of {', '.join(LABELS)} "
                         "(project options: model).")
    return name


def detection_device() -> str:
    import torch  # after the worker forked: CUDA is touched in the child only

    return "0" if torch.cuda.is_available() else "cpu"


def detection_training_cost(project, recommendation: dict) -> tuple:
    """(DetectionCost, {"n_train", "n_val"}): a short run of the detector that will train, at the project's size,
    batch and options, on some of the dataset's images, timed on this worker (training.engine.yolo.timing).
    Raises StageError (no detector to train) or ValueError (no images to time on)."""
    from .engine.yolo.timing import split_images, time_detector_training

    options = detection_training_options(project)
    root = project.dataset.root
    model = detection_model_name(project, recommendation)
    source = network_source(project, model)  # an edited model dict (the visualiser) trains instead of the zoo's
    spec = source.spec if source else None
    cost = time_detector_training(
        model, data_dir=root, data_root=settings.DATA_DIR, input_size=project.input_size, batch=options["batch"],
        epochs=options["epochs"], overrides=options.get("overrides"), device=detection_device(), spec=spec,
        network=source.label if spec else "")
    train, val = split_images(root)
    return cost, {"n_train": len(train), "n_val": len(val)}


def detection_preview(project, result: dict) -> str:
    """train_preview for a detector: the run's duration from the recommend stage's timing, for the epochs and
    batch the run will use. Raises StageError where the project's options are not accepted."""
    from tango_common.durations import about

    from .engine.yolo.timing import DetectionCost
    from .engine.yolo.zoo import LABELS
    from .services import named

    cost, counts = DetectionCost(**result["training_cost"]), result["data_facts"]
    options = detection_training_options(project)
    model = detection_model_name(project, result)
    source = network_source(project, model)
    network = source.label if source and source.spec else ""
    label = named(model, network, LABELS)
    if (model, network, project.input_size, options["batch"]) != (cost.model, cost.network, cost.input_size,
                                                                   cost.batch):
        return (f"Run Recommend again to time {label} at {project.input_size} px, batch "
                f"{options['batch']} on this server (it timed {named(cost.model, cost.network, LABELS)} at "
                f"{cost.input_size} px, batch {cost.batch}).")
    epochs = options["epochs"]
    seconds = cost.run_seconds(epochs=epochs, n_train=counts["n_train"], n_val=counts["n_val"])
    why = " (set on the project)" if "epochs" in (project.options.get("train") or {}) else " (the default)"
    early = (f"; less if it stops early (no better for {options['patience']} epochs)"
             if 0 < options["patience"] < epochs else "")
    return (f"Training {label} at {cost.input_size} px for up to {epochs} epoch{'s' if epochs != 1 else ''}"
            f"{why} should take "
            f"{about(seconds)} on this server{early}: {cost.epoch_seconds(**counts):.1f} s per epoch for "
            f"{counts['n_train']} training and {counts['n_val']} validation images, from a short training run of "
            f"this model on the worker by the recommend stage. Fewer epochs: set them in the project's settings "
            f"(Training options).")


def detection_train_stage(job, report) -> dict:
    from .engine.yolo.train import train_detector
    from .engine.yolo.zoo import family_of, model_yaml

    project = job.project
    model_name = detection_model_name(project)
    options = detection_training_options(project)
    dataset = project.dataset
    retry = job.attempt > 1  # a retried run continues from the last epoch its cancelled or failed attempt saved
    source = network_source(project, model_name, report)  # an edited network (the visualiser), or None
    model, work = model_name, job_dir(job, keep=retry)
    if source is not None and source.spec is not None:
        edited = work / "network.yaml"
        edited.write_text(yaml.safe_dump(source.spec, sort_keys=False), encoding="utf-8")
        model = str(edited)
    run, _ = TrainingRun.objects.update_or_create(job=job, defaults={
        "project": project, "model_name": model_name, "hyperparameters": options, "dataset_sha256": dataset.sha256,
        "architecture": {"task": "detection", "family": family_of(model_name),
                         "yaml": Path(model_yaml(model_name)).name, "num_classes": len(dataset.class_names),
                         "class_names": dataset.class_names, "input_size": project.input_size,
                         **(source.about if source else {})},
    })
    device = detection_device()
    report(f"Training {source.label if source else model_name} on {dataset.name} (version {dataset.sha256[:12]}) at "
           f"{project.input_size} px for "
           f"up to {options['epochs']} epochs, batch {options['batch']}, on {'CUDA' if device != 'cpu' else 'CPU'}.")

    def on_epoch(record: dict) -> None:
        run.history = [r for r in run.history if r["epoch"] != record["epoch"]] + [record]
        run.save(update_fields=["history", "updated_at"])
        report.publish_result({"task": "detection", "model": model_name, "history": run.history,
                               "epochs": options["epochs"]})

    weights = absolute(project.weights_path) if project.weights_path else None
    if weights is not None:
        report(f"Starting from the uploaded weights {project.weights_name} (sha256 {project.weights_sha256[:12]}…).")
    try:
        result = train_detector(
            data_dir=dataset.root, model=model, out_dir=work / "run",
            data_root=settings.DATA_DIR, input_size=project.input_size, epochs=options["epochs"],
            batch=options["batch"], device=device, weights=weights, resume=retry, report=report, on_epoch=on_epoch,
            workers=options["workers"], seed=options.get("seed", 0), patience=options["patience"],
            overrides=options.get("overrides"))
    except ValueError as exc:  # a weights file that does not fit this model
        raise StageError(str(exc)) from None
    return _finish(run, result, model_name=model_name, options=options, dataset=dataset, report=report)


def _finish(run, result, *, model_name: str, options: dict, dataset, report) -> dict:
    weights = Path(result.weights_path)
    run.architecture.update(params=result.params, gflops=result.gflops)
    run.history = result.history
    run.metrics = {"final": result.final, "best_epoch": result.best_epoch, "per_class": result.per_class,
                   "pr_curve": result.pr_curve, "device": result.device, "epochs_completed": result.epochs_completed,
                   "map50": result.final["map50"], "map50_95": result.final["map50_95"]}
    run.metrics["quality"] = gate = detection_verdict(
        map50=result.final["map50"], min_map50=options.get("min_accuracy"), epochs=result.epochs_completed,
        n_train=sum(1 for _ in (dataset.root / "images" / "train").glob("*")),
        input_size=run.architecture["input_size"], batch=options["batch"],
        nbs=(options.get("overrides") or {}).get("nbs"), model=model_name, pretrained=bool(run.project.weights_path))
    run.weights_path = relative(weights)
    run.weights_sha256 = sha256_file(weights)
    run.save()
    predictions = [{**p, "thumbnail": _thumbnail(dataset.root / "images" / "val" / p["image"])}
                   for p in result.predictions]
    report(f"Weights saved ({run.weights_sha256[:12]}…): mAP50 {result.final['map50']:.3f}, "
           f"mAP50-95 {result.final['map50_95']:.3f} (best epoch {result.best_epoch}).")
    outcome = {"task": "detection", "model": model_name, "training_run": run.pk, "history": result.history,
               "epochs": options["epochs"], "class_names": result.class_names, **run.metrics,
               "predictions": predictions, "params": result.params, "gflops": result.gflops,
               "input_size": run.architecture["input_size"], "weights_sha256": run.weights_sha256}
    if not gate["passed"]:
        if options.get("quality_gate", True):  # the job fails: automatic mode stops, convert cannot start
            raise StageError(quality_summary(gate), result=outcome)
        report(f"Quality gate off for this project: {gate['reason']}; passing the model on anyway.")
    else:
        report(f"Quality gate passed: mAP50 {gate['map50']:.3f} (needed {gate['required']:.2f}).")
    return outcome


def _thumbnail(path: Path) -> str:
    """A small JPEG as a data URI: the page draws the boxes over it in SVG, at the image's own coordinates."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
