"""Reads the pages share. Scoping always starts from projects.access, so an outsider's query is empty."""

from django.db.models import Case, CharField, F, FloatField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from .access import datasets_for, editable_teams_for, projects_for
from .jobs.models import Job
from .jobs.registry import score_keys, stages


def project_list(user) -> QuerySet:
    """The user's projects, each annotated with its newest job's stage, status and progress, and its best score
    (`best_score` 0..1 and `best_score_label`, e.g. "top-1") from the stages that declare scores. One query."""
    newest = Job.objects.filter(project=OuterRef("pk")).order_by("-created_at", "-id")
    labels = [When(latest_stage=s.key, then=Value(s.label)) for s in stages()]
    projects = projects_for(user).select_related("team", "device").annotate(
        latest_stage=Subquery(newest.values("stage")[:1]),
        latest_status=Subquery(newest.values("status")[:1]),
        latest_progress=Subquery(newest.values("progress")[:1]),
    ).annotate(latest_stage_label=Case(*labels, default=F("latest_stage"), output_field=CharField()))
    return _with_best_score(projects).order_by("-created_at", "-id")  # a total order: pages never overlap


def _with_best_score(projects: QuerySet) -> QuerySet:
    best = {}
    for i, (key, _label, stage_keys) in enumerate(score_keys()):
        value = Cast(KeyTextTransform(key, "result"), FloatField())
        jobs = (Job.objects.filter(project=OuterRef("pk"), stage__in=stage_keys, result__has_key=key)
                .annotate(score=value).order_by(F("score").desc(nulls_last=True)))
        best[f"best_{i}"] = Subquery(jobs.values("score")[:1], output_field=FloatField())
    if not best:
        return projects.annotate(best_score=Value(None, FloatField()), best_score_label=Value("", CharField()))
    named = [When(**{f"{name}__isnull": False}, then=Value(label))
             for name, (_key, label, _stages) in zip(best, score_keys(), strict=True)]
    return projects.annotate(**best).annotate(
        best_score=Coalesce(*best, output_field=FloatField()) if len(best) > 1 else F(next(iter(best))),
        best_score_label=Case(*named, default=Value(""), output_field=CharField()))


def dataset_list(user) -> QuerySet:
    return datasets_for(user).select_related("team")


def can_create_anywhere(user) -> bool:
    """Whether to offer "New …" buttons: the user edits at least one team."""
    return editable_teams_for(user).exists()
