"""AutoML stages: hyperparameter search and the once-for-all supernet. The Django shell around
training.engine.hpo and training.engine.supernet.

Both are optional stages: automatic mode skips them, a user runs them from the project page or the API, and
their outcome feeds the ordinary train stage (the best hyperparameters, or a subnet and its inherited weights),
so everything after it (convert, benchmark, package) treats the result like any other model.
"""

import functools
import os
import socket
import time

from django.conf import settings
from django.db import transaction

from projects.jobs.errors import JobNotAllowed, StageError
from projects.jobs.log import JobLog
from projects.jobs.models import Job, JobStatus
from projects.jobs.selectors import latest_succeeded
from projects.jobs.storage import job_dir, relative
from projects.models import Task
from tango_common.options import OptionsError, with_defaults

from .engine.options import HPO_OPTIONS, NAS_OPTIONS

# -- options ------------------------------------------------------------------------------------------------------


def stage_options(project, key: str, schema) -> dict:
    """options[key] of the project, checked against the stage's declared options (training.engine.options);
    missing values take their default."""
    try:
        return with_defaults(project.options.get(key) or {}, schema, task=project.task)
    except OptionsError as exc:
        raise StageError(f"{key} options: {exc}.") from None


# -- hyperparameter search ----------------------------------------------------------------------------------------


def optuna_storage_url() -> str:
    """The portal's own database in SQLAlchemy's form: studies live beside the jobs (Postgres in team mode)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    from sqlalchemy.engine import URL

    return URL.create("postgresql+psycopg", username=db.get("USER") or None, password=db.get("PASSWORD") or None,
                      host=db.get("HOST") or None, port=int(db["PORT"]) if db.get("PORT") else None,
                      database=db["NAME"]).render_as_string(hide_password=False)


def study_name(job) -> str:
    return f"tango-project{job.project_id}-job{job.pk}"


def hpo_stage(job, report) -> dict:
    from .engine import hpo

    project = job.project
    options = stage_options(project, "hpo", HPO_OPTIONS)
    objective, model_name = _objective(job, options, report)
    study = hpo.study_open(storage_url=optuna_storage_url(), name=study_name(job), seed=job.pk)
    budget = hpo.Budget(trials=options["trials"], minutes=options["minutes"])
    report(f"Searching {len(hpo.SPACES[project.task])} hyperparameters of {model_name}: {budget.trials} trials of "
           f"{options['epochs']} epochs, on {options['workers']} worker(s) at once.")
    for _ in range(options["workers"] - 1):
        _dispatch_helper(job)
    published = _publisher(report, study, project.task, model_name, options)
    hpo.study_run(study=study, task=project.task, objective=objective, budget=budget,
                  report=_worker_report(report, published))
    _wait_for_other_workers(study, report, minutes=options["minutes"])
    summary = published()
    if summary["best"] is None:
        raise StageError("No trial finished: see the log for why (a learning rate range that diverges, or a "
                         "time budget shorter than one trial).")
    report(f"Best trial {summary['best']['number']}: {100 * summary['best']['value']:.1f}% with "
           f"{hpo.format_params(summary['best']['params'])}. Train with it from the project page.")
    return summary


def _objective(job, options: dict, report):
    """objective(params, on_epoch) for the project's task, and the model it trains. `report(None)` runs every
    batch: that is where a cancel stops a trial."""
    if job.project.task == Task.DETECTION:
        return _detection_objective(job, options, report)
    project = job.project
    from .engine.train import TrainConfig, train
    from .services import training_config

    model_name = project.options.get("model") or latest_succeeded(project, "recommend").result.get("model")
    if not model_name:
        raise StageError("The recommendation found no model to search hyperparameters for: pick one first.")
    dataset = project.dataset

    def objective(params: dict, on_epoch) -> float:
        config = TrainConfig.from_dict({**training_config(project, model_name), **params,
                                        "epochs": options["epochs"], "patience": 0})
        result = train(data_dir=dataset.root, class_names=dataset.class_names, config=config,
                       out_dir=job_dir(job, keep=True) / f"trial-{on_epoch.number}", resume=False,
                       report=lambda line=None, progress=None: report(None),
                       on_epoch=lambda record: on_epoch(record["epoch"], record["top1"]))
        return result.best_top1

    return objective, model_name


def _detection_objective(job, options: dict, report):
    """A trial trains the project's detector with ultralytics' hyperparameters set to the trial's; the metric is
    mAP50-95 on the validation split (mAP50 moves little between good settings on small data)."""
    from .detection import detection_device, detection_model_name, detection_training_options
    from .engine.yolo.train import train_detector

    project = job.project
    model_name = detection_model_name(project)
    train_options = detection_training_options(project)
    dataset = project.dataset

    def objective(params: dict, on_epoch) -> float:
        out_dir = job_dir(job, keep=True) / f"trial-{on_epoch.number}"
        result = train_detector(
            data_dir=dataset.root, model=model_name, out_dir=out_dir, data_root=settings.DATA_DIR,
            input_size=project.input_size, epochs=options["epochs"], batch=train_options["batch"],
            device=detection_device(), report=lambda line=None, progress=None: report(None),
            on_epoch=lambda record: on_epoch(record["epoch"], record["map50_95"]), workers=train_options["workers"],
            seed=train_options.get("seed", 0), patience=options["epochs"], n_predictions=0,
            overrides={**train_options.get("overrides", {}), **params})
        return max(r["map50_95"] for r in result.history)

    return objective, model_name


def _publisher(report, study, task: str, model_name: str, options: dict):
    """Publish the study's summary to the page (and return it)."""
    from .engine import hpo

    def publish() -> dict:
        summary = {**hpo.study_summary(study, task=task), "model": model_name, "budget": options}
        report.publish_result(summary)
        return summary

    return publish


def _worker_report(report, publish):
    def worker_report(line=None, progress=None):
        report(line, progress=progress)
        if line and " trials finished" in line:
            publish()

    return worker_report


def _wait_for_other_workers(study, report, *, minutes: float) -> None:
    """Helpers may still be running a trial after this worker's loop ends: wait for them (cancel still works)."""
    import optuna

    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        running = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
        if not running:
            return
        report(None)
        time.sleep(2)


def _dispatch_helper(job) -> None:
    from .tasks import hpo_helper

    transaction.on_commit(lambda: hpo_helper.apply_async(args=[job.pk, job.attempt], queue=job.queue))


class _HelperReport:
    """A helper worker's report(): lines go to the job's log, tagged with the worker; it stops (raises) once the
    job is cancelled or over, so a helper never outlives its job."""

    def __init__(self, job_id: int, attempt: int):
        self.job_id, self.attempt = job_id, attempt
        self.log = JobLog(job_id)
        self.tag = f"[{socket.gethostname()}:{os.getpid()}]"
        self.checked = 0.0

    def __call__(self, line=None, progress=None):
        if time.monotonic() - self.checked > 2:  # called every batch: look at the job row every 2 s at most
            self.checked = time.monotonic()
            if not Job.objects.filter(pk=self.job_id, attempt=self.attempt, status=JobStatus.RUNNING,
                                      cancel_requested=False).exists():
                raise StageError("the search is over")
        if line:
            self.log.write(f"{self.tag} {line}")

    def publish_result(self, result: dict) -> None:
        return None  # the job's own worker publishes the summary


def hpo_helper_run(*, job_id: int, attempt: int) -> None:
    """Run trials of a running search's study on this worker, until its budget is spent or the job ends."""
    from .engine import hpo

    job = Job.objects.select_related("project__dataset").filter(pk=job_id, attempt=attempt).first()
    if job is None or job.status != JobStatus.RUNNING:
        return
    report = _HelperReport(job_id, attempt)
    options = stage_options(job.project, "hpo", HPO_OPTIONS)
    objective, _ = _objective(job, options, report)
    study = hpo.study_open(storage_url=optuna_storage_url(), name=study_name(job), seed=job.pk + os.getpid())
    try:
        hpo.study_run(study=study, task=job.project.task, objective=objective, report=report,
                      budget=hpo.Budget(trials=options["trials"], minutes=options["minutes"]))
    except StageError:
        pass  # the job ended while this helper was between trials: nothing to do


def _hpo_adopt(project, job, device_name) -> str:
    best = (job.result or {}).get("best")
    if not best:
        raise JobNotAllowed("This search has no finished trial to adopt.")
    train = project.options.get("train", {})
    if project.task == Task.DETECTION:  # ultralytics' own hyperparameters ride in the trainer's overrides
        train = {**train, "overrides": {**train.get("overrides", {}), **best["params"]}}
    else:
        train = {**train, **best["params"]}
    project.options = {**project.options, "train": train}
    return f"trial {best['number']}'s hyperparameters"


# -- once-for-all supernet ----------------------------------------------------------------------------------------


def supernet_spec_for(input_size: int):
    from .engine.supernet import SupernetSpec

    small = input_size <= 32
    widths = (16, 32, 64, 128) if small else (32, 64, 128, 256)
    return SupernetSpec(widths=widths, stem_width=widths[0], small_input=small)


@functools.lru_cache(maxsize=65536)
def subnet_costs(spec, config, *, num_classes: int, input_size: int):
    """The recommender's costs of a subnet, counted from its architecture (the search needs thousands: building
    each on the meta device and profiling it would take a second apiece)."""
    import hashlib

    from recommender.engine.costs import Costs

    from .engine.supernet import subnet_name, subnet_profile

    c = subnet_profile(spec, config, input_size=input_size, num_classes=num_classes)
    name = subnet_name(spec, config)
    return Costs(params=c["params"], flops=2.0 * c["macs"], weight_bytes=4.0 * c["params"],
                 activation_bytes=4.0 * c["activation_values"], peak_activation_bytes=4.0 * c["peak_values"],
                 layers=c["layers"], ops=c["ops"],
                 signature=hashlib.sha256(f"{input_size}|{name}".encode()).hexdigest()[:20],
                 extra={"conv1x1_flops": 2.0 * c["macs_1x1"], "linear_flops": 2.0 * c["macs_linear"]})


def _device_target(device, project) -> tuple[str, str, float]:
    """(engine, precision, budget ms) a device is searched for: the project's own settings on its own device."""
    if device.pk == project.device_id:
        return project.engine, project.precision, project.latency_budget_ms or device.default_latency_budget_ms
    engine = "onnxruntime" if "onnxruntime" in device.engines else device.engines[0]
    return engine, "fp32", device.default_latency_budget_ms


def nas_stage(job, report) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from recommender.models import Device
    from recommender.services import latency_model_for

    from .engine import supernet as sn
    from .engine.data import EvalTransform, ImageFolderDataset, list_images

    project = job.project
    if project.task != Task.CLASSIFICATION:
        raise StageError("The supernet is built for image classification; detection projects train a YOLO model.")
    options = stage_options(project, "nas", NAS_OPTIONS)
    dataset, size = project.dataset, project.input_size
    spec = supernet_spec_for(size)
    n_classes = len(dataset.class_names)

    def split(name):
        samples = list_images(dataset.root / name, dataset.class_names)
        if not samples:
            raise StageError(f"The dataset has no {name} images.")
        return sn.preload(ImageFolderDataset(samples, EvalTransform(size)))

    report(f"Preparing {dataset.name} at {size} px.")
    train = DataLoader(split("train"), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(split("val"), batch_size=256)
    out = job_dir(job, keep=job.attempt > 1)
    supernet = sn.Supernet(spec, n_classes)
    report(f"Training the supernet once: widths {spec.widths}, depths {spec.depths}, expand ratios {spec.expands}, "
           f"kernels {spec.kernels} ({len(spec.depths) ** 4 * len(spec.expands) ** 4 * len(spec.kernels) ** 4:,} "
           f"subnets), sandwich rule, {options['epochs']} epochs.")
    trained = sn.supernet_train(supernet, train, val, config=sn.SupernetTrainConfig(epochs=options["epochs"]),
                                report=report, out_path=out / "supernet.pt")
    # Candidates are measured on fixed batches (BN statistics from 256 training images, top-1 on up to 512
    # validation images); each chosen subnet's reported top-1 is then on the whole validation split.
    accuracy = sn.SubnetEvaluator(supernet, sn.fixed_batch(train, 256)[0], sn.fixed_batch(val, 512))
    search = sn.EvolutionSettings(population=options["population"], generations=options["generations"])
    targets, about = [], []
    for device in Device.objects.filter(is_active=True):
        engine, precision, budget = _device_target(device, project)
        model = latency_model_for(device=device, engine=engine, precision=precision, team=project.team)

        def latency(config, model=model):
            return model.predict_ms(subnet_costs(spec, config, num_classes=n_classes, input_size=size))

        targets.append(sn.Target(device.name, latency, budget))
        about.append({"device": device.name, "engine": engine, "precision": precision, "budget_ms": budget,
                      "confidence": model.confidence(), "project_device": device.pk == project.device_id})
    found = sn.search_targets(spec, accuracy=accuracy, targets=targets, settings=search, report=report)
    devices, weights = [], {}
    for row, result in zip(about, found, strict=True):
        name = sn.subnet_name(spec, result.config)
        if name not in weights:  # one file per distinct subnet: any device's choice can be adopted and trained
            subnet = sn.subnet_for(supernet, result.config, train, batches=len(train))
            weights[name] = (out / f"{name}.pt", sn.top1(subnet, val))
            torch.save(subnet.state_dict(), weights[name][0])
        devices.append({**row, "model": name, **result.as_dict(), "search_top1": result.accuracy,
                        "accuracy": weights[name][1], "weights": relative(weights[name][0])})
        report(f"{row['device']}: {result.config.label()} — top-1 {100 * weights[name][1]:.1f}% (validation), "
               f"predicted {result.latency_ms:.2f} ms ({row['engine']} {row['precision']}, budget "
               f"{row['budget_ms']:g} ms{'' if result.fits else ', nothing fits: the fastest subnet'})")
    mine = next(d for d in devices if d["project_device"])
    report(f"{project.device.name}'s subnet {mine['model']} is ready with its inherited weights; adopt it (a short "
           "fine-tune in the train stage) to convert, benchmark and package it.")
    return {"supernet": {"largest_top1": trained.largest_top1, "smallest_top1": trained.smallest_top1,
                         "history": trained.history, "seconds": trained.seconds, "spec": spec.as_dict()},
            "devices": devices, "model": mine["model"], "finetune_epochs": options["finetune_epochs"],
            "evaluated": len(accuracy.values)}


def _nas_adopt(project, job, device_name) -> str:
    rows = job.result["devices"]
    row = next((d for d in rows if d["device"] == device_name) if device_name else
               (d for d in rows if d["project_device"]), None)
    if row is None:
        raise JobNotAllowed(f"The search chose no subnet for {device_name!r}.")
    options = dict(project.options)
    options["model"] = row["model"]
    options["nas"] = {**options.get("nas", {}), "job": job.pk, "device": row["device"]}
    options["train"] = {**options.get("train", {}), "epochs": job.result["finetune_epochs"]}
    project.options = options
    return f"the subnet searched for {row['device']} ({row['model']})"


ADOPTERS = {"hpo": _hpo_adopt, "nas": _nas_adopt}


def search_adopt(*, job, user=None, device_name: str | None = None) -> Job:
    """Carry a finished search into training with one click: the best hyperparameters (HPO) or a device's
    subnet with its inherited weights (supernet) become the project's training choice, and the train stage is
    queued. Returns the train job."""
    from projects.jobs.services import job_enqueue

    if job.stage not in ADOPTERS or job.status != JobStatus.SUCCEEDED:
        raise JobNotAllowed("Only a finished hyperparameter or supernet search can be adopted.")
    project = job.project
    with transaction.atomic():
        what = ADOPTERS[job.stage](project, job, device_name)
        project.save(update_fields=["options", "updated_at"])
        JobLog(job.pk).write(f"Adopted {what}{f' by {user}' if user else ''}; training queued.")
        return job_enqueue(project=project, stage_key="train", user=user)


def nas_initial_weights(project, model_name: str):
    """The inherited weights for a subnet the project adopted: a server-side path from the search job's own
    folder, never from the user's options (which only name the job, checked to be this project's)."""
    from projects.jobs.storage import absolute

    reference = project.options.get("nas") or {}
    if not model_name.startswith("ofa-") or "job" not in reference:
        return None
    job = Job.objects.filter(pk=reference["job"], project=project, stage="nas",
                             status=JobStatus.SUCCEEDED).first()
    row = next((d for d in (job.result or {}).get("devices", []) if d["model"] == model_name), None) if job else None
    return absolute(row["weights"]) if row else None
