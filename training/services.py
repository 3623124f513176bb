"""The train stage: the Django shell around training.engine."""

import re

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import absolute, job_dir, relative
from projects.models import Task
from tango_common.options import OptionsError, check_options

from .automl import nas_initial_weights
from .engine.options import TRAIN_OPTIONS
from .engine.quality import summary as quality_summary
from .engine.quality import verdict as quality_verdict
from .hooks import network_source
from .models import TrainingRun

GATE_OPTIONS = ("min_accuracy", "quality_gate")  # options of the quality gate, not of the training loop
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+  train loss")  # training.engine.train.epoch_line, not the progress bar


def user_training_options(project) -> dict:
    """The project's options["train"], checked against the train stage's declaration: unknown keys (a
    `weights_path`, say) and out-of-bound values stop the run before anything is loaded."""
    try:
        return check_options(project.options.get("train") or {}, TRAIN_OPTIONS, task=project.task)
    except OptionsError as exc:
        raise StageError(f"Training options not accepted: {exc}. Fix them on the project's settings page.") from None


def training_config(project, model_name: str, facts=None) -> dict:
    """The TrainConfig values of a run: the user's options over defaults derived from the dataset
    (training.engine.defaults), the project's model and input size, and starting weights that only the server
    names: the team's uploaded file, or a supernet search job of this project."""
    from .engine.defaults import data_facts, resolve

    dataset = project.dataset
    facts = facts or data_facts(dataset.root, dataset.class_names)
    user = {k: v for k, v in user_training_options(project).items() if k not in GATE_OPTIONS}
    options, _ = resolve(user, facts)
    options.update(model=model_name, input_size=project.input_size)
    if project.weights_path:  # transfer learning from the user's own file; nothing is ever downloaded
        options["weights_path"] = str(absolute(project.weights_path))
    elif inherited := nas_initial_weights(project, model_name):  # a subnet adopted from the supernet search
        options["weights_path"] = str(inherited)
    return options


def recommended_model(project, recommendation: dict, n_train: int) -> tuple[str | None, str]:
    """The model the train stage trains when none is picked on the project, and why when the dataset sized it
    down. The ranking's top when the uploaded weights or a network edited in the visualiser were made for it; else
    the top, or a smaller fitting candidate where n_train images are too few to train the top from scratch
    (training.engine.sizing.bearable_model). The one rule: the recommend stage names this model (result["model"],
    the card, the API) and the train stage trains it."""
    from .engine.sizing import bearable_model

    ranking = recommendation.get("ranking") or {}
    top = (ranking.get("top") or {}).get("key") or recommendation.get("model")
    if top and (project.weights_path or network_source(project, top)):
        return top, ""
    return bearable_model(ranking.get("items") or [], recommended=top, n_train=n_train)


def model_to_train(project, recommendation: dict, n_train: int) -> tuple[str | None, str]:
    """What the train stage trains, and why when the dataset sized it down: the user's pick, else the
    recommendation (recommended_model)."""
    if chosen := project.options.get("model"):
        return chosen, ""
    return recommended_model(project, recommendation, n_train)


def training_step_cost(project, model_name: str):
    """A few real training steps of the network that will train, timed on this worker (training.engine.timing): the
    network edited in the visualiser where the project has one for model_name (the train stage trains that one,
    not the zoo's), else the zoo model. Raises ValueError where the dataset has no training images to load."""
    from .engine.timing import time_training

    source = network_source(project, model_name)
    dataset = project.dataset
    return time_training(model_name, data_dir=dataset.root, class_names=dataset.class_names,
                         input_size=project.input_size, build=source.build if source else None,
                         network=source.label if source else "")


def named(model: str, network: str, labels: dict) -> str:
    """How people read what trains: the model's label, or the edited network's ("resnet18, edited (network version
    2)" with the model's key in its label's place)."""
    label = labels.get(model, model)
    return network.replace(model, label, 1) if network else label


def train_preview(project) -> str:
    """Before a run: how long training will take on this server, from the recommend stage's timing of the model on
    this worker (training.engine.timing) and the epochs the run will use. "" until there is a timing to go on."""
    from tango_common.durations import about

    from .engine.defaults import DataFacts, resolve
    from .engine.timing import StepCost

    try:
        result = latest_succeeded(project, "recommend").result
        user = {k: v for k, v in user_training_options(project).items() if k not in GATE_OPTIONS}
    except StageError:
        return ""
    if not result.get("training_cost"):
        return ""
    if project.task == Task.DETECTION:
        from .detection import detection_preview

        try:
            return detection_preview(project, result)
        except StageError:  # no detector to train (the train stage says why)
            return ""
    cost, facts = StepCost(**result["training_cost"]), DataFacts(**result["data_facts"])
    model = model_to_train(project, result, facts.n_train)[0]
    labels = {item["key"]: item["label"] for item in (result.get("ranking") or {}).get("items") or []}
    source = network_source(project, model)  # an edited network trains instead of the zoo model: its timing counts
    network = source.label if source else ""
    label = named(model, network, labels)
    if (model, network, project.input_size) != (cost.model, cost.network, cost.input_size):
        return (f"Run Recommend again to time {label} at {project.input_size} px on this server (it timed "
                f"{named(cost.model, cost.network, labels)} at {cost.input_size} px).")
    values, derived = resolve(user, facts)
    epochs, batch = values["epochs"], values["batch_size"]
    trained = facts.n_train // batch * batch or facts.n_train  # whole batches, as the loop draws them
    seconds = cost.run_seconds(epochs=epochs, n_train=trained, n_val=facts.n_val)
    why = f" (chosen for {facts.n_train} training images)" if "epochs" in derived else " (set on the project)"
    return (f"Training {label} at {cost.input_size} px for {epochs} epochs{why} should take {about(seconds)} on "
            f"this server: {seconds / epochs:.1f} s per epoch, from training steps of this model timed on the "
            f"worker by the recommend stage. Fewer epochs: set them in the project's settings (Training options).")


def _weights_label(project, config) -> str | None:
    if not config.weights_path:
        return None
    return f"uploaded: {project.weights_name}" if project.weights_path else "inherited from the supernet search"


def _restore_epoch_lines(job, report, history: list[dict], epochs: int) -> None:
    """Before a retry resumes, write the line of every epoch its checkpoint holds that the console lacks: a worker
    killed after saving an epoch's checkpoint and before writing its line would otherwise leave that epoch out of
    the console for good (the retry starts after it)."""
    from .engine.train import epoch_line

    texts = job.log_lines.filter(text__startswith="epoch ").values_list("text", flat=True)
    shown = {int(match.group(1)) for text in texts if (match := EPOCH_LINE.match(text))}
    best = -1.0
    for record in history:
        improved, best = record["top1"] > best, max(best, record["top1"])
        if record["epoch"] not in shown:
            report(f"{epoch_line(record, epochs, improved)}  (from the checkpoint: the stopped attempt saved this "
                   "epoch but not its line)")


def train_stage(job, report) -> dict:
    from .engine.train import TrainConfig, train
    from .engine.zoo import complexity_level, family_of

    project = job.project
    if project.task == Task.DETECTION:
        from .detection import detection_train_stage

        return detection_train_stage(job, report)
    from .engine.defaults import data_facts, explain, resolve

    dataset = project.dataset
    recommendation = latest_succeeded(project, "recommend").result
    facts = data_facts(dataset.root, dataset.class_names)
    model_name, why = model_to_train(project, recommendation, facts.n_train)
    if why:
        report(why)
    if not model_name:
        raise StageError("The recommendation found no model expected to fit the latency budget and memory limit. "
                         "Pick a model on the project page to train one anyway, or change the budget.")
    try:
        family_of(model_name)
        config = TrainConfig.from_dict(training_config(project, model_name, facts))
        config.validate()
    except (TypeError, ValueError) as exc:
        raise StageError(f"Training options: {exc}") from None
    user = user_training_options(project)
    report(explain(config.as_dict(), resolve({k: v for k, v in user.items() if k not in GATE_OPTIONS}, facts)[1],
                   facts))
    source = network_source(project, model_name, report)  # an edited network (the visualiser), or None: the zoo's
    run, _ = TrainingRun.objects.update_or_create(job=job, defaults={
        "project": project, "model_name": model_name,
        # Where the server keeps the starting weights is not recorded for users to read: which weights it was is.
        "hyperparameters": {**config.as_dict(), "weights_path": _weights_label(project, config)},
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
                   model_factory=source.build if source else None,
                   on_resume=lambda history: _restore_epoch_lines(job, report, history, config.epochs))
    run.architecture.update(params=result.params, flops=result.flops, macs=result.macs)
    run.history = result.history
    run.metrics = {key: getattr(result, key) for key in (
        "best_epoch", "best_top1", "final", "per_class_accuracy", "confusion_matrix", "device", "epochs_completed",
        "stopped_early")}
    run.metrics["quality"] = gate = quality_verdict(
        top1=result.final["top1"], confusion=result.confusion_matrix, class_names=dataset.class_names,
        min_top1=user.get("min_accuracy"), history=result.history, n_train=facts.n_train,
        input_size=config.input_size, image_side=facts.side, epochs=config.epochs)
    run.weights_path = relative(result.weights_path)
    run.weights_sha256 = result.weights_sha256
    run.save()
    report(f"Weights saved ({result.weights_sha256[:12]}…), best val top-1 {100 * result.best_top1:.1f}% "
           f"at epoch {result.best_epoch}.")
    outcome = {"model": model_name, "training_run": run.pk, "history": result.history, "epochs": config.epochs,
               "class_names": dataset.class_names, **run.metrics, "params": result.params, "flops": result.flops,
               "weights_sha256": result.weights_sha256}
    if not gate["passed"]:
        if user.get("quality_gate", True):
            # Failed on quality: the job fails (automatic mode stops here, convert cannot start), the result stays.
            raise StageError(quality_summary(gate), result=outcome)
        report(f"Quality gate off for this project: {gate['reason']}; passing the model on anyway.")
    else:
        report(f"Quality gate passed: {100 * gate['top1']:.1f}% against chance {100 * gate['chance']:.1f}% "
               f"(needed {100 * gate['required']:.1f}%).")
    return outcome
