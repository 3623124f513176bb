"""Reads the pages share. Scoping always starts from projects.access, so an outsider's query is empty."""

from django.db.models import Case, CharField, F, OuterRef, QuerySet, Subquery, Value, When

from .access import datasets_for, editable_teams_for, projects_for
from .jobs.models import Job
from .jobs.registry import stages


def project_list(user) -> QuerySet:
    """The user's projects, each annotated with its newest job's stage and status (one query, no N+1)."""
    newest = Job.objects.filter(project=OuterRef("pk")).order_by("-created_at", "-id")
    labels = [When(latest_stage=s.key, then=Value(s.label)) for s in stages()]
    return projects_for(user).annotate(
        latest_stage=Subquery(newest.values("stage")[:1]),
        latest_status=Subquery(newest.values("status")[:1]),
    ).annotate(latest_stage_label=Case(*labels, default=F("latest_stage"), output_field=CharField()))


def dataset_list(user) -> QuerySet:
    return datasets_for(user).select_related("team")


def can_create_anywhere(user) -> bool:
    """Whether to offer "New …" buttons: the user edits at least one team."""
    return editable_teams_for(user).exists()
