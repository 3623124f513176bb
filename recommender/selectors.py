"""Reads the recommender's pages and API share: the device catalog, its records, a project's recommendation."""

from django.db.models import Q

from projects import access
from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from tango_common.engines import Accelerator

from .engine.costs import Costs
from .engine.latency import Record, leave_one_out
from .models import BenchmarkRecord, Device, Tier
from .services import device_specs, model_label, paper_choice_for

# The wizard's device groups, in display order: the tiers, with the on-device tier split by kind of device.
DEVICE_GROUPS = ("Cloud", "Kubernetes", "PC and servers", "Jetson", "Phones", "Boards")


def device_group(device: Device) -> str:
    if device.tier == Tier.CLOUD:
        return "Cloud"
    if device.tier == Tier.K8S:
        return "Kubernetes"
    if device.tier == Tier.PC:
        return "PC and servers"
    if device.accelerator_kind == Accelerator.NVIDIA_GPU:
        return "Jetson"
    if "android" in device.os.lower() or "ios" in device.os.lower().split():
        return "Phones"
    return "Boards"


def device_catalog_grouped(devices=None) -> list[tuple[str, list]]:
    """Active devices in DEVICE_GROUPS, each in catalog order; empty groups left out."""
    groups: dict[str, list] = {label: [] for label in DEVICE_GROUPS}
    for device in device_catalog(devices):
        groups[device_group(device)].append(device)
    return [(label, members) for label, members in groups.items() if members]


def device_catalog(devices=None) -> list:
    """Active devices in the design's tier order (Cloud, K8S, PC, On-device), by name within a tier."""
    order = {tier: i for i, tier in enumerate(Tier.values)}
    devices = Device.objects.filter(is_active=True) if devices is None else devices
    return sorted(devices, key=lambda d: (order.get(d.tier, len(order)), d.name))


def visible_records(teams=None) -> Q:
    """The benchmark records these teams' members may see: the shared ones (no team's) and the teams' own."""
    return Q(team__isnull=True) | Q(team__in=teams) if teams is not None else Q(team__isnull=True)


def device_records_with_errors(*, device, teams=None, limit: int = 200) -> list[dict]:
    """The device's records the viewer may see (shared calibration records and their teams' own), each with the
    latency predicted for it by the model fitted to the other records of its engine and precision (leave one out:
    the error a new record would have had)."""
    records = list(BenchmarkRecord.objects.filter(visible_records(teams), device=device, batch_size=1)
                   .select_related("architecture").order_by("-created_at")[:limit])
    specs = device_specs(device)
    groups: dict[tuple, list] = {}
    for record in records:
        groups.setdefault((record.engine, record.precision), []).append(record)
    predictions = {}
    for (_, precision), members in groups.items():
        loo = leave_one_out(specs, precision, [Record(Costs.from_dict(r.architecture.costs), r.latency_ms)
                                               for r in members])
        predictions.update({r.pk: p for r, p in zip(members, loo, strict=True)})
    rows = []
    for record in records:
        predicted, backed_by = predictions[record.pk]
        rows.append({"id": record.pk, "label": model_label(record.architecture.model_name),
                     "model": record.architecture.model_name, "input_size": record.input_size,
                     "engine": record.engine, "precision": record.precision, "source": record.get_source_display(),
                     "measured_ms": record.latency_ms, "predicted_ms": predicted,
                     "error": predicted / record.latency_ms - 1,
                     "error_pct": 100 * (predicted / record.latency_ms - 1), "memory_mb": record.memory_mb,
                     "accuracy": record.accuracy, "backed_by": backed_by, "created_at": record.created_at})
    return rows


def error_summary(rows: list[dict]) -> dict:
    if not rows:
        return {"count": 0}
    errors = sorted(abs(r["error"]) for r in rows)
    within = sum(e <= 0.10 for e in errors) / len(errors)
    median = errors[len(errors) // 2]
    return {"count": len(rows), "within_10": within, "median_error": median, "median_error_pct": 100 * median,
            "within_10_pct": 100 * within}


def project_recommendation_read(project) -> dict:
    """What the page and the API show: the recommend stage's ranking (computed on a worker: the web process never
    builds models), the paper's choice, and the model the train stage will use."""
    job = last_recommendation(project)
    result = job.result if job else {}
    paper = result.get("paper") or paper_choice_for(device=project.device, task=project.task).as_dict()
    top = (result.get("ranking") or {}).get("top")
    # The recommendation's model is the one that trains: the ranking's top, or a smaller fitting one when the
    # dataset is too small to train the top one from scratch (the recommend stage says which and why).
    recommended = result.get("model") or (top or {}).get("key")
    chosen = project.options.get("model") or recommended
    return {"project": project.pk, "job": job.pk if job else None, "ranking": result.get("ranking"), "paper": paper,
            "comparison": result.get("comparison", ""), "chosen": chosen,
            "chosen_by": "project" if project.options.get("model") else ("ranking" if recommended else None),
            "why": result.get("reason", "") if not project.options.get("model") else ""}


def last_recommendation(project):
    """The project's newest successful recommend job, or None."""
    try:
        return latest_succeeded(project, "recommend")
    except StageError:
        return None


def latest_calibration(user):
    """The newest calibration job of this server, for staff (it is a catalog job: no one else sees it)."""
    from .calibration import STAGE

    return access.catalog_jobs_for(user).filter(stage=STAGE).order_by("-created_at", "-id").first()


def host_device():
    """The catalog row of the server the portal runs on, or None before `tango setup` made it."""
    return Device.objects.filter(is_host=True).first()
