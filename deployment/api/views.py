"""Artifacts of the user's teams: what the pipeline made, how it was verified and measured, and the file."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from deployment.http import artifact_download_response
from deployment.models import Artifact
from deployment.selectors import artifacts_for
from projects.api.filters import IdFilter
from projects.audit import audit_record

from .serializers import ArtifactSerializer


class ArtifactFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    job = IdFilter(field_name="job_id")
    kind = django_filters.ChoiceFilter(choices=Artifact.Kind.choices)

    class Meta:
        model = Artifact
        fields = ["project", "job", "kind"]


class ArtifactViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ArtifactSerializer
    lookup_value_regex = "[0-9]{1,18}"  # longer numbers name no row: a 404, not SQLite's OverflowError
    filterset_class = ArtifactFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return artifacts_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The artifact's file (a model, or the deployment bundle zip), as an attachment."""
        artifact = self.get_object()
        audit_record(actor=request.user, action="downloaded", target=artifact)
        return artifact_download_response(artifact)
