"""Artifacts of the user's teams: what the pipeline made, how it was verified and measured, and the file."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from deployment.http import artifact_download_response
from deployment.models import Artifact
from deployment.selectors import artifacts_for

from .serializers import ArtifactSerializer


class ArtifactFilter(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id")
    job = django_filters.NumberFilter(field_name="job_id")
    kind = django_filters.ChoiceFilter(choices=Artifact.Kind.choices)

    class Meta:
        model = Artifact
        fields = ["project", "job", "kind"]


class ArtifactViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return artifacts_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The artifact's file (a model, or the deployment bundle zip), as an attachment."""
        return artifact_download_response(self.get_object())
