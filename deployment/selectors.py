"""Reads the deployment pages and API share, scoped to the user's teams (projects.access)."""

from django.db.models import QuerySet

from projects.access import teams_for

from .models import Artifact, Trial


def artifacts_for(user) -> QuerySet[Artifact]:
    return Artifact.objects.filter(project__team__in=teams_for(user))


def trials_for(user) -> QuerySet[Trial]:
    return Trial.objects.filter(project__team__in=teams_for(user)).select_related("artifact", "project")
