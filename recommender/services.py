"""Recommender services: the glue between the catalog and records (Django), the zoo (training.engine) and the
Django-free recommender core. The core never imports Django or another core; this module hands it plain values.
"""

import dataclasses
import functools
import json
from dataclasses import asdict

from django.db import transaction
from django.db.models import Q

from tango_common.engines import Accelerator

from .engine.accuracy import METRICS, expected, priors
from .engine.costs import Costs
from .engine.latency import DeviceSpecs, LatencyModel, Record
from .engine.memory import MemoryModel
from .engine.ranking import Candidate, Ranking, paper_comparison, rank, sized_comparison
from .engine.table1 import MODEL_LABELS, RESNET203_NOTE, DeviceRow, PaperChoice, paper_choice
from .host import HOST_DEVICE_NAME, read_host_specs
from .models import ArchitectureCost, BenchmarkRecord, Device, RecordSource


@transaction.atomic
def host_device_refresh() -> Device:
    """Create or update the This_Server device from the machine's current specs.

    is_active is left as an admin set it: a refresh re-reads hardware, it does not re-enable a hidden target.
    """
    specs = read_host_specs()
    device = Device.objects.filter(name=HOST_DEVICE_NAME).first() or Device(name=HOST_DEVICE_NAME)
    for field, value in specs.items():
        setattr(device, field, value)
    device.full_clean()  # the engines read here must pass the same rule an admin edit does
    device.save()
    return device


def calibration_start(*, device: Device, quick: bool = False, user=None):
    """Queue the calibration job (a catalog job: no project). Only the device that is this server can measure
    itself: the job times the machine it runs on. Who may start it is the caller's check (staff)."""
    from projects.jobs.errors import JobNotAllowed
    from projects.jobs.services import catalog_job_enqueue

    from .calibration import STAGE

    if not device.is_host:
        raise JobNotAllowed(f"{device.name} is not this server: only {HOST_DEVICE_NAME} can measure itself (the "
                            "job times the machine it runs on).")
    return catalog_job_enqueue(stage_key=STAGE, params={"quick": bool(quick)}, user=user)


# --- the paper's rules ---------------------------------------------------------------------------------------


def device_row(device: Device) -> DeviceRow:
    return DeviceRow(name=device.name, tier=device.tier, peak_fp32_gflops=device.peak_fp32_gflops,
                     paper_detection_model=device.paper_detection_model,
                     paper_classification_model=device.paper_classification_model)


def paper_choice_for(*, device: Device, task: str) -> PaperChoice:
    # The paper devices' rule fields alone, not their rows: every project page shows this (a tenth of its CPU when
    # each of the catalog's 22-column rows was built into a Device).
    paper = Device.objects.exclude(paper_detection_model="", paper_classification_model="").values(
        *(field.name for field in dataclasses.fields(DeviceRow)))
    return paper_choice(device=device_row(device), task=task, paper_devices=[DeviceRow(**row) for row in paper])


# --- candidates and their costs --------------------------------------------------------------------------------


def model_label(key: str) -> str:
    from training.engine.yolo.zoo import LABELS as DETECTION_LABELS  # the zoo's own names; imports no torch

    if key in MODEL_LABELS or key in DETECTION_LABELS:
        return MODEL_LABELS.get(key) or DETECTION_LABELS[key]
    return key.replace("densenet_tiny", "DenseNet-tiny").replace("vgg_tiny", "VGG-tiny").replace(
        "densenet", "DenseNet-").replace("vgg", "VGG-").replace("resnet", "ResNet-")


def architecture_costs(*, model_name: str, num_classes: int, input_size: int, task: str = "classification",
                       family: str = "", level: int = 0) -> Costs:
    """The model's costs from the model itself, cached per architecture signature in ArchitectureCost.

    The candidate's task, family and level ride along in the costs' extra, so the web process can rank cached
    candidates (the wizard's preview) without importing the zoo, which loads torch.
    """
    row = ArchitectureCost.objects.filter(model_name=model_name, input_size=input_size,
                                          num_classes=num_classes).first()
    if row is None or not row.costs.get("kernels"):  # a row from before the kernel lists: profile it again
        row = _profile_and_store(model_name, num_classes, input_size, {"task": task, "family": family,
                                                                        "level": level})
    return Costs.from_dict(row.costs)


def _profile_and_store(model_name: str, num_classes: int, input_size: int, about: dict) -> ArchitectureCost:
    costs = _profile_cached(model_name, num_classes, input_size)
    stored = {**costs.as_dict(), "extra": {**costs.extra, **about}}
    row, created = ArchitectureCost.objects.get_or_create(signature=costs.signature, defaults={
        "model_name": model_name, "input_size": input_size, "num_classes": num_classes, "costs": stored})
    if not created and not row.costs.get("kernels"):
        row.costs = {**stored, "extra": {**stored["extra"], **row.costs.get("extra", {})}}  # keeps its task, family
        row.save(update_fields=["costs"])
    return row


@functools.lru_cache(maxsize=256)
def _profile_cached(model_name: str, num_classes: int, input_size: int) -> Costs:
    """Profiles are pure functions of their arguments: a process keeps them (the DB row is the shared cache)."""
    from training.engine.yolo.zoo import detection_model_names

    from .profiling import build_detection_on_meta, build_on_meta, profile_model

    if model_name in detection_model_names():
        return profile_model(build_detection_on_meta(model_name, num_classes=num_classes), input_size)
    return profile_model(build_on_meta(model_name, num_classes=num_classes, input_size=input_size), input_size)


def candidate_models(task: str) -> list[tuple[str, str, int]]:
    """(zoo key, family, level) of every candidate for the task, from the zoo itself (imports torch)."""
    if task == "detection":
        from training.engine.yolo.zoo import FAMILIES
    else:
        from training.engine.zoo import FAMILIES
    return [(name, family, level) for family, names in FAMILIES.items() for level, name in enumerate(names, 1)]


def candidates_for(*, task: str, num_classes: int, input_size: int, cached_only: bool = False) -> list[Candidate]:
    """Every candidate with its costs. cached_only: only what ArchitectureCost holds, without importing the zoo."""
    if cached_only:
        return _cached_candidates(task, num_classes, input_size)
    return [Candidate(key=key, label=model_label(key), family=family, level=level, input_size=input_size,
                      costs=architecture_costs(model_name=key, num_classes=num_classes, input_size=input_size,
                                               task=task, family=family, level=level))
            for key, family, level in candidate_models(task) if _takes_input(task, key, input_size)]


def _takes_input(task: str, key: str, input_size: int) -> bool:
    """Detectors need an input that their largest stride (a P6 model's 64 px) divides: at 160 px a P6 model's
    upsampled map (6) met its skip (5) in a concat, and the recommend stage failed with a tensor-size error."""
    return _stride_misfit(task, key, input_size) is None


def _stride_misfit(task: str, key: str, input_size: int) -> int | None:
    """The largest stride of a detector that the input size does not fit (None when it fits, or for classifiers)."""
    if task != "detection":
        return None
    from training.engine.yolo.zoo import min_input_size

    stride = min_input_size(key)
    return None if input_size >= stride and input_size % stride == 0 else stride


def candidates_skipped(*, task: str, input_size: int) -> str:
    """One line naming the candidates left out of the ranking at this input size and why ("" when none is)."""
    skipped: dict[int, list[str]] = {}
    for key, _, _ in candidate_models(task):
        if (stride := _stride_misfit(task, key, input_size)) is not None:
            skipped.setdefault(stride, []).append(model_label(key))
    return " ".join(
        f"Not ranked at {input_size} px: {', '.join(labels)} — their largest stride is {stride} px, which must "
        f"divide the input size (e.g. {', '.join(str(n) for n in _fitting_sizes(stride, input_size))} px)."
        for stride, labels in skipped.items())


def _fitting_sizes(stride: int, input_size: int) -> list[int]:
    """The input sizes nearest input_size that a stride divides."""
    below = max(stride, input_size // stride * stride)
    return sorted({below, below + stride})


def _cached_candidates(task: str, num_classes: int, input_size: int) -> list[Candidate]:
    rows = ArchitectureCost.objects.filter(input_size=input_size, num_classes=num_classes)
    out = []
    for row in rows:
        extra = row.costs.get("extra", {})
        if extra.get("task") == task:
            out.append(Candidate(key=row.model_name, label=model_label(row.model_name), family=extra["family"],
                                 level=extra["level"], input_size=input_size, costs=Costs.from_dict(row.costs)))
    return out


# --- records and the models fitted to them ---------------------------------------------------------------------


def device_specs(device: Device) -> DeviceSpecs:
    return DeviceSpecs(peak_fp32_gflops=device.peak_fp32_gflops, peak_fp16_gflops=device.peak_fp16_gflops,
                       peak_int8_gops=device.peak_int8_gops, memory_bandwidth_gbps=device.memory_bandwidth_gbps,
                       memory_mb=device.memory_mb, cpu_only=device.accelerator_kind == Accelerator.NONE)


def records_for(*, device: Device, engine: str, precision: str, team=None):
    """The records a team's prediction may learn from: shared calibration records and the team's own."""
    scope = Q(team__isnull=True) | Q(team=team) if team is not None else Q(team__isnull=True)
    return (BenchmarkRecord.objects.filter(scope, device=device, engine=engine, precision=precision)
            .select_related("architecture").order_by("pk"))


def latency_model_for(*, device: Device, engine: str, precision: str, team=None) -> LatencyModel:
    """Fitted on read: keyed by the records it sees, so every new record recalibrates at once."""
    records = list(records_for(device=device, engine=engine, precision=precision, team=team))
    return _fit_latency(device_specs(device), precision, tuple(
        (r.pk, r.latency_ms, json.dumps(r.architecture.costs, sort_keys=True)) for r in records))


@functools.lru_cache(maxsize=64)
def _fit_latency(specs: DeviceSpecs, precision: str, key: tuple) -> LatencyModel:
    records = [Record(Costs.from_dict(json.loads(costs)), latency) for _, latency, costs in key]
    return LatencyModel.fit(specs, precision, records)


def memory_model_for(*, device: Device, engine: str, precision: str, team=None) -> MemoryModel:
    records = records_for(device=device, engine=engine, precision=precision, team=team).exclude(memory_mb=None)
    return MemoryModel.fit(precision, [(Costs.from_dict(r.architecture.costs), r.memory_mb) for r in records])


def measured_accuracy(*, team, dataset) -> dict[str, list[float]]:
    """The team's measured accuracy per model on this dataset (benchmarks that measured it)."""
    if team is None or dataset is None:
        return {}
    rows = (BenchmarkRecord.objects.filter(team=team, project__dataset=dataset, accuracy__isnull=False)
            .values_list("architecture__model_name", "accuracy"))
    out: dict[str, list[float]] = {}
    for name, accuracy in rows:
        out.setdefault(name, []).append(accuracy)
    return out


@transaction.atomic
def benchmark_record_add(*, device: Device, engine: str, precision: str, model_name: str, num_classes: int,
                         input_size: int, latency_ms: float, source: str, memory_mb: float | None = None,
                         accuracy: float | None = None, team=None, project=None, batch_size: int = 1,
                         details: dict | None = None) -> BenchmarkRecord:
    """Store one measured run. The next prediction for this device × engine × precision is fitted with it.

    accuracy is a percentage (top-1 or mAP) on the project's data; batch_size other than 1 is kept but the
    latency model reads batch-1 records only.
    """
    if latency_ms <= 0:
        raise ValueError("latency_ms must be positive")
    if source not in RecordSource.values:
        raise ValueError(f"Unknown record source {source!r}.")
    architecture = ArchitectureCost.objects.get(signature=architecture_costs(
        model_name=model_name, num_classes=num_classes, input_size=input_size).signature)
    return BenchmarkRecord.objects.create(
        device=device, engine=engine, precision=precision, architecture=architecture, input_size=input_size,
        batch_size=batch_size, latency_ms=latency_ms, memory_mb=memory_mb, accuracy=accuracy, source=source,
        team=team, project=project, details=details or {})


def benchmark_record_delete(*, record: BenchmarkRecord, actor=None) -> None:
    """Staff's curation (the admin, the API): remove a record the predictions should not learn from, a bad
    measurement say. The next prediction for its device × engine × precision is fitted without it (fitted on read);
    the audit log keeps who removed what (the team's log for a team's record)."""
    from projects.audit import audit_record

    audit_record(actor=actor, action="deleted", target=record)
    record.delete()


def benchmark_measured(*, engine: str, precision: str, model_name: str, num_classes: int, input_size: int,
                       latency_ms: float, memory_mb: float | None, accuracy: float | None, team, project,
                       details: dict) -> BenchmarkRecord:
    """deployment's benchmark stage measured an artifact on this server: store it as a record of This_Server
    (team-scoped, with the accuracy it measured), so the next prediction for this engine × precision learns."""
    device = Device.objects.filter(is_host=True).first() or host_device_refresh()
    return benchmark_record_add(device=device, engine=engine, precision=precision, model_name=model_name,
                                num_classes=num_classes, input_size=input_size, latency_ms=latency_ms,
                                memory_mb=memory_mb, accuracy=accuracy, source=RecordSource.BENCHMARK, team=team,
                                project=project, details=details)


# --- the recommendation ------------------------------------------------------------------------------------------


def recommendation_for(*, device: Device, task: str, engine: str, precision: str, input_size: int, num_classes: int,
                       budget_ms: float | None, memory_limit_mb: float | None, team=None, dataset=None,
                       cached_only: bool = False) -> dict:
    """The ranking, the paper's choice beside it, and where they disagree: what the stage, page and API show."""
    candidates = candidates_for(task=task, num_classes=num_classes, input_size=input_size, cached_only=cached_only)
    accuracy = expected(priors({c.key: (c.family, c.costs.flops) for c in candidates}, task=task),
                        measured_accuracy(team=team, dataset=dataset))
    ranking: Ranking = rank(
        candidates, latency=latency_model_for(device=device, engine=engine, precision=precision, team=team),
        memory=memory_model_for(device=device, engine=engine, precision=precision, team=team), accuracy=accuracy,
        budget_ms=budget_ms, memory_limit_mb=memory_limit_mb or device.memory_mb)
    paper = paper_choice_for(device=device, task=task)
    notes = {"resnet203": RESNET203_NOTE} if any(c.key == "resnet203" for c in candidates) else {}
    return {"ranking": ranking.as_dict(), "paper": paper.as_dict(), "notes": notes,
            "comparison": paper_comparison(ranking, paper.model, paper.model_label) if candidates else "",
            "device": device.name, "engine": engine, "precision": precision, "input_size": input_size,
            "task": task, "accuracy_metric": METRICS[task]}


def project_recommendation(project) -> dict:
    return recommendation_for(
        device=project.device, task=project.task, engine=project.engine, precision=project.precision,
        input_size=project.input_size, num_classes=max(2, len(project.dataset.class_names)),
        budget_ms=project.latency_budget_ms, memory_limit_mb=project.memory_limit_mb, team=project.team,
        dataset=project.dataset)


# --- the recommend stage -----------------------------------------------------------------------------------------


def host_device_setup() -> str:
    """`tango setup`'s step: this server, as it is now, in the catalog."""
    device = host_device_refresh()
    return f"Catalog: this server is {device.cpu_name or device.cpu_arch}, {device.cpu_cores} cores."


def recommend_preview(project) -> str:
    """The paper's rule for the project, shown on the pipeline panel before the recommend stage runs."""
    return f"Paper rules: {paper_choice_for(device=project.device, task=project.task).reason}"


def recommend_stage(job, report) -> dict:
    """Rank the candidates for the project's device, show the paper's choice beside them, and pick the top one."""
    project = job.project
    device = project.device
    report(f"Task: {project.get_task_display()}; dataset {project.dataset.name} "
           f"({project.dataset.num_images} images, {len(project.dataset.class_names)} classes).", progress=5)
    report(f"Target: {device.name} ({device.get_tier_display()} tier), {device.accelerator_name or 'CPU only'}, "
           f"engine {project.engine}, {project.precision}, input {project.input_size} px, latency budget "
           f"{_budget_text(project.latency_budget_ms)}, memory limit "
           f"{project.memory_limit_mb or device.memory_mb} MiB.", progress=10)
    result = project_recommendation(project)
    ranking, paper = result["ranking"], result["paper"]
    if skipped := candidates_skipped(task=project.task, input_size=project.input_size):
        report(skipped)
        result["skipped"] = skipped
    report(f"Paper rules: {paper['reason']}", progress=30)
    report(f"Latency model: {ranking['confidence']}.", progress=40)
    for item in ranking["items"]:
        report(f"  {item['label']:>14}: {item['latency_ms']:9.1f} ms {item['memory_mb']:7.0f} MiB  expected "
               f"{item['accuracy']:5.1f}% {result['accuracy_metric']}  {item['reason']}")
    report(ranking["summary"], progress=90)
    if result["comparison"]:
        report(result["comparison"])
    top = ranking["top"]
    result.update(model=top["key"] if top else None, model_label=top["label"] if top else "",
                  reason=top["reason"] if top else ranking["summary"], rule="ranking")
    from training.services import model_to_train, recommended_model

    facts = _classification_facts(project)
    if top and facts:
        # The model the train stage will train (its own rule), named here and on the card, not only in the train log.
        model, why = recommended_model(project, result, facts.n_train)
        if why:
            result.update(model=model, model_label=model_label(model), reason=why,
                          rule="ranking, sized to the dataset", ranked_top=top["key"])
            report(why)
            if result["comparison"]:
                result["comparison"] = sized_comparison(
                    ranking["items"], paper_key=paper["model"], paper_label=paper["model_label"],
                    top_label=top["label"], trains_key=model, trains_label=result["model_label"])
                report(result["comparison"])
    report(f"Recommended: {result['model_label']}." if top else "Nothing recommended: nothing is expected to fit. "
           "Pick a model on the project page to train one anyway, or change the budget.", progress=95)
    if chosen := project.options.get("model"):
        result["chosen"] = chosen
        report(f"Training will use {model_label(chosen)}, picked on the project.")
    if facts and (trains := model_to_train(project, result, facts.n_train)[0]):
        result.update(_training_timing(project, trains, facts, report))
    elif project.task == "detection":
        result.update(_detection_timing(project, result, report))
    report(None, progress=100)
    return result


def _classification_facts(project):
    """The dataset facts the training defaults derive from (training.engine.defaults); None for detection, whose
    trainer (ultralytics) sizes its own run."""
    if project.task != "classification":
        return None
    from training.engine.defaults import data_facts

    return data_facts(project.dataset.root, project.dataset.class_names)


def _training_timing(project, model_name: str, facts, report) -> dict:
    """A few real training steps of the network that will train (an edited one where the visualiser has it), timed
    on this worker: what the train stage's estimate of a run's duration is computed from
    (training.services.train_preview)."""
    from projects.jobs.errors import StageError
    from training.services import named, training_step_cost

    try:
        cost = training_step_cost(project, model_name)
    except (ValueError, StageError) as error:  # no images to load, an edited network saved for another dataset: no
        # estimate, and the train stage will say why
        report(f"No estimate of the training time: {error}")
        return {}
    report(f"Timed {named(model_name, cost.network, {model_name: model_label(model_name)})} at {project.input_size} "
           f"px on this worker ({cost.params / 1e6:.2f} M parameters): "
           f"{1000 * cost.train_s:.0f} ms per image to train, {1000 * cost.eval_s:.0f} ms to evaluate, "
           f"{1000 * cost.load_s:.0f} ms to load ({cost.threads} thread{'s' if cost.threads != 1 else ''}, "
           f"{cost.device}).")
    return {"training_cost": cost.as_dict(), "data_facts": asdict(facts)}


def _detection_timing(project, recommendation: dict, report) -> dict:
    """A short training run of the detector that will train, timed on this worker: what the train stage's estimate
    of a run's duration is computed from (training.detection.detection_preview)."""
    from training.detection import detection_training_cost

    try:
        cost, counts = detection_training_cost(project, recommendation)
    except Exception as error:  # the estimate is a side line of the recommendation: say why and go on
        report(f"No estimate of the training time: {error or type(error).__name__}")
        return {}
    from training.services import named

    report(f"Timed {named(cost.model, cost.network, {cost.model: model_label(cost.model)})} at {project.input_size} "
           f"px, batch {cost.batch}, on this worker ({cost.params / 1e6:.2f} M parameters): "
           f"{1000 * cost.train_s:.0f} ms per training image, {1000 * cost.eval_s:.0f} ms per validation image, "
           f"{cost.epoch_s:.1f} s of checkpoints per epoch, {cost.setup_s:.1f} s to set up and finish "
           f"({cost.threads} thread{'s' if cost.threads != 1 else ''}, {cost.device}).")
    return {"training_cost": cost.as_dict(), "data_facts": counts}


def _budget_text(budget_ms) -> str:
    return f"{budget_ms:g} ms" if budget_ms else "none"


# --- the user's choice -------------------------------------------------------------------------------------------


def project_model_choose(*, project, model_name: str):
    """Store the model the train stage will use: the ranking's top choice accepted, or another candidate picked.

    Checked against the candidates the project's recommend stage ranked (the web process does not load the zoo).
    """
    from .selectors import last_recommendation

    job = last_recommendation(project)
    known = {item["key"] for item in ((job.result.get("ranking") or {}).get("items") or [])} if job else set()
    if not job:
        raise ValueError("Run the recommend stage first: it ranks the candidates to choose from.")
    if model_name not in known:
        raise ValueError(f"{model_name!r} is not a candidate for {project.get_task_display().lower()}.")
    project.options = {**project.options, "model": model_name}
    project.save(update_fields=["options", "updated_at"])
    return project


def recommendation_preview(*, device: Device, task: str, engine: str, precision: str, input_size: int,
                           num_classes: int, budget_ms: float | None, memory_limit_mb: float | None,
                           team=None, n_train: int | None = None) -> tuple[str, list[str]]:
    """One line for the wizard's Review step, the model the ranking would pick, from cached costs only (the web
    process never builds models; the paper's choice when nothing is cached for this input size yet), and warnings:
    no candidate fits the budget or the memory limit. n_train: the dataset's training images, when known: a
    classifier too big for them is named with the smaller one that will train (the recommend stage's rule)."""
    paper = paper_choice_for(device=device, task=task)
    result = recommendation_for(device=device, task=task, engine=engine, precision=precision, input_size=input_size,
                                num_classes=num_classes, budget_ms=budget_ms, memory_limit_mb=memory_limit_mb,
                                team=team, cached_only=True)
    ranking = result["ranking"]
    if not ranking["items"]:
        return (f"Paper rules: {paper.model_label}. The recommend stage ranks every candidate at {input_size} px "
                f"when it runs (nothing is measured at this size yet).", [])
    top = ranking["top"]
    if top and task == "classification" and n_train:
        from training.engine.sizing import bearable_model  # torch-free

        model, why = bearable_model(ranking["items"], recommended=top["key"], n_train=n_train)
        if why:
            trains = next(i for i in ranking["items"] if i["key"] == model)
            return (f"{trains['label']} (predicted {trains['latency_ms']:.1f} ms): the ranking's top, "
                    f"{top['label']}, is too big to train from scratch on {n_train} training images. "
                    f"Paper rules: {paper.model_label}.", [])
    if top:
        return (f"Ranking: {top['label']} (predicted {top['latency_ms']:.1f} ms, {ranking['confidence']}). "
                f"Paper rules: {paper.model_label}.", [])
    closest = ranking["closest"]
    return (f"Ranking: nothing fits; closest {closest['label']}. Paper rules: {paper.model_label}.",
            [f"{ranking['summary']} Otherwise the recommend stage finds no model to train."])


def wizard_pick_preview(*, device, task, engine, precision, input_size, latency_budget_ms, memory_limit_mb, dataset,
                        team):
    """The wizard's Review (through projects.devices' port): what the recommend stage would pick, and warnings."""
    from projects.devices import PickPreview

    line, warnings = recommendation_preview(
        device=device, task=task, engine=engine, precision=precision, input_size=input_size,
        num_classes=max(2, len(dataset.class_names)), budget_ms=latency_budget_ms, memory_limit_mb=memory_limit_mb,
        team=team, n_train=((dataset.stats or {}).get("split_counts") or {}).get("train"))
    return PickPreview(line=line, warnings=tuple(warnings))
