"""The train stage: the Django shell around training.engine."""

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Task

from .automl import nas_initial_weights
from .hooks import network_source
from .models import TrainingRun

# Defaults a project's options["train"] may override (see training.engine.train.TrainConfig).
DEFAULT_TRAINING = {"epochs": 10, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine",
                    "patience": 5}


def training_config(project, model_name: str) -> dict:
    options = dict(DEFAULT_TRAINING)
    options.update(project.options.get("train", {}))
    options.update(model=model_name, input_size=project.input_size)
    if project.weights_path:  # transfer learning from the user's own file; nothing is ever downloaded
        options["weights_path"] = str(absolute(project.weights_path))
    elif inherited := nas_initial_weights(project, model_name):  # a subnet adopted from the supernet search
        options["weights_path"] = str(inherited)
    return options


def train_stage(job, report) -> dict:
    from .engine.train import TrainConfig, train
    from .engine.zoo import complexity_level, family_of

    project = job.project
    if project.task == Task.DETECTION:
        from .detection import detection_train_stage

        return detection_train_stage(job, report)
    recommendation = latest_succeeded(project, "recommend").result
    model_name = project.options.get("model") or recommendation.get("model")
    if not model_name:
        raise StageError("The recommendation found no model expected to fit the latency budget and memory limit. "
                         "Pick a model on the project page to train one anyway, or change the budget.")
    try:
        config = TrainConfig.from_dict(training_config(project, model_name))
        config.validate()
    except (TypeError, ValueError) as exc:
        raise StageError(f"Training options: {exc}") from None
    dataset = project.dataset
    source = network_source(project, model_name, report)  # an edited network (the visualiser), or None: the zoo's
    run, _ = TrainingRun.objects.update_or_create(job=job, defaults={
        "project": project, "model_name": model_name, "hyperparameters": config.as_dict(),
        "dataset_sha256": dataset.sha256,
        "architecture": {"family": family_of(model_name), "level": complexity_level(model_name),
                         "num_classes": len(dataset.class_names), "class_names": dataset.class_names,
                         "input_size": project.input_size, **(source.about if source else {})},
    })
    report(f"Training {source.label if source else model_name} on {dataset.name} (version {dataset.sha256[:12]}) "
           f"for up to {config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr}.")

    def on_epoch(record: dict) -> None:
        # A resumed run repeats no epoch, but keep the list keyed by epoch number all the same.
        run.history = [r for r in run.history if r["epoch"] != record["epoch"]] + [record]
        run.save(update_fields=["history", "updated_at"])
        report.publish_result({"model": model_name, "history": run.history, "epochs": config.epochs})

    if project.weights_path:
        report(f"Starting from the uploaded weights {project.weights_name} (sha256 {project.weights_sha256[:12]}…).")
    retry = job.attempt > 1  # a retried run continues from the checkpoint its cancelled or failed attempt left
    result = train(data_dir=dataset.root, class_names=dataset.class_names, config=config,
                   out_dir=job_dir(job, keep=retry), report=report, on_epoch=on_epoch, resume=retry,
                   model_factory=source.build if source else None)
    run.architecture.update(params=result.params, flops=result.flops, macs=result.macs)
    run.history = result.history
    run.metrics = {key: getattr(result, key) for key in (
        "best_epoch", "best_top1", "final", "per_class_accuracy", "confusion_matrix", "device", "epochs_completed",
        "stopped_early")}
    run.weights_path = relative(result.weights_path)
    run.weights_sha256 = result.weights_sha256
    run.save()
    report(f"Weights saved ({result.weights_sha256[:12]}…), best val top-1 {100 * result.best_top1:.1f}% "
           f"at epoch {result.best_epoch}.")
    return {"model": model_name, "training_run": run.pk, "history": result.history, "epochs": config.epochs,
            "class_names": dataset.class_names, **run.metrics, "params": result.params, "flops": result.flops,
            "weights_sha256": result.weights_sha256}
