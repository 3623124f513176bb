"""Reads the pages share. Scoping always starts from projects.access, so an outsider's query is empty."""

from django.db.models import Case, CharField, F, OuterRef, QuerySet, Subquery, Value, When

from .access import datasets_for, editable_teams_for, projects_for
from .models import Job
from .stages import STAGES


def project_list(user) -> QuerySet:
    """The user's projects, each annotated with its newest job's stage and status (one query, no N+1)."""
    newest = Job.objects.filter(project=OuterRef("pk")).order_by("-created_at", "-id")
    labels = [When(latest_stage=s.key, then=Value(s.label)) for s in STAGES]
    return projects_for(user).annotate(
        latest_stage=Subquery(newest.values("stage")[:1]),
        latest_status=Subquery(newest.values("status")[:1]),
    ).annotate(latest_stage_label=Case(*labels, default=F("latest_stage"), output_field=CharField()))


def dataset_list(user) -> QuerySet:
    return datasets_for(user).select_related("team")


def device_catalog(devices=None) -> list:
    """Active devices in the design's tier order (Cloud, K8S, PC, On-device), by name within a tier."""
    from recommender.models import Device, Tier

    order = {tier: i for i, tier in enumerate(Tier.values)}
    devices = Device.objects.filter(is_active=True) if devices is None else devices
    return sorted(devices, key=lambda d: (order.get(d.tier, len(order)), d.name))


def can_create_anywhere(user) -> bool:
    """Whether to offer "New …" buttons: the user edits at least one team."""
    return editable_teams_for(user).exists()
