"""Artifacts of the user's teams: what the pipeline made, how it was verified and measured, and the file."""

import mimetypes

import django_filters
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from deployment.http import artifact_download_response
from deployment.imports import guard_model_upload, model_import
from deployment.models import Artifact, Trial
from deployment.selectors import artifacts_for, trials_for
from deployment.trials import triable_among, trial_create, use_image_upload_handler
from projects.access import jobs_for, require_editor, require_editor_somewhere
from projects.api.filters import IdFilter
from projects.api.permissions import IsEditorOrReadOnly
from projects.api.serializers import JobSerializer
from projects.audit import audit_record
from projects.jobs.storage import absolute
from projects.uploads import UploadGuardedViewSet, upload_refusals

from .serializers import (
    ArtifactSerializer,
    ModelImportResultSerializer,
    ModelImportSerializer,
    TrialCreateSerializer,
    TrialSerializer,
)


class ArtifactFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    job = IdFilter(field_name="job_id")
    kind = django_filters.ChoiceFilter(choices=Artifact.Kind.choices)
    triable = django_filters.BooleanFilter(method="filter_triable",
                                           label="Only the models Try it can run here (true), or all others (false)")

    class Meta:
        model = Artifact
        fields = ["project", "job", "kind", "triable"]

    def filter_triable(self, queryset, name, value):
        return triable_among(queryset) if value else queryset.exclude(pk__in=triable_among(queryset).values("pk"))


class TrialFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    artifact = IdFilter(field_name="artifact_id")

    class Meta:
        model = Trial
        fields = ["project", "artifact"]


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


@extend_schema_view(
    list=extend_schema(summary="Tries of the user's teams' models on uploaded images, newest first"),
    retrieve=extend_schema(summary="One try: its status and what the model answered"),
)
class TrialViewSet(UploadGuardedViewSet, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Try it: upload an image, pick an artifact, and a worker answers with the model's predictions."""

    serializer_class = TrialSerializer
    lookup_value_regex = "[0-9]{1,18}"
    filterset_class = TrialFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return trials_for(self.request.user).order_by("-created_at", "-id")

    upload_guard = staticmethod(use_image_upload_handler)
    # The project is named in the body, so before it is read: an editor of some team; the project's role after.
    may_upload = staticmethod(require_editor_somewhere)

    def get_parsers(self):
        if getattr(self, "request", None) is not None and self.request.method == "POST":
            return [MultiPartParser()]  # an image upload is the only POST
        return super().get_parsers()

    @extend_schema(request={"multipart/form-data": TrialCreateSerializer}, responses={201: TrialSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a try (editors and owners): the image is checked (size, type) before it is kept."""
        body = TrialCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        project = body.validated_data["project"]
        require_editor(request.user, project.team)
        trial = trial_create(project=project, artifact=body.validated_data["artifact"],
                             upload=body.validated_data.get("image"), user=request.user,
                             top_k=body.validated_data["top_k"],
                             too_big="image" in upload_refusals(request))
        return Response(TrialSerializer(trial).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY},
                   parameters=[OpenApiParameter("annotated", bool, description="Detection: the boxes drawn.")])
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        """The uploaded image, or with ?annotated=1 the detector's boxes drawn on it."""
        trial = self.get_object()
        relative = trial.annotated_path if request.query_params.get("annotated") and trial.annotated_path \
            else trial.image_path
        path = absolute(relative)
        if not path.is_file():
            raise NotFound("The image is gone from the server.")
        return FileResponse(path.open("rb"), content_type=mimetypes.guess_type(path.name)[0] or "image/jpeg")


class ModelImportViewSet(UploadGuardedViewSet, viewsets.GenericViewSet):
    """Bring your own model: an ONNX or TorchScript file becomes the project's model; convert → benchmark →
    package take it from there."""

    serializer_class = ModelImportSerializer
    parser_classes = [MultiPartParser]
    upload_guard = staticmethod(guard_model_upload)
    # The project is named in the body, so before it is read: an editor of some team; the project's role after.
    may_upload = staticmethod(require_editor_somewhere)

    @extend_schema(request={"multipart/form-data": ModelImportSerializer},
                   responses={201: ModelImportResultSerializer})
    def create(self, request):
        """Import a model (editors and owners): checked (format, opset, shapes, a run here) before it is kept."""
        if refusals := upload_refusals(request):
            raise serializers.ValidationError(refusals)
        body = ModelImportSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = data["project"]
        require_editor(request.user, project.team)
        run = model_import(project=project, upload=data["file"], labels=data.get("labels"),
                           input_size=data.get("input_size"), mean=data.get("mean"), std=data.get("std"),
                           user=request.user)
        return Response({"project": project.pk, "job": run.job_id, "training_run": run.pk,
                         "model_name": run.model_name, "format": run.architecture["imported"],
                         "checks": run.architecture["checks"],
                         "accuracy_warning": run.architecture["checks"].get("accuracy_warning")},
                        status=status.HTTP_201_CREATED)


class AcceptSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="Why the difference is acceptable (recorded with your "
                                                             "name on the artifact and in the team's audit log).")


class ConversionViewSet(viewsets.GenericViewSet):
    """Convert jobs: accept one that failed its parity check (an override, recorded and audited)."""

    serializer_class = AcceptSerializer
    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self):
        return jobs_for(self.request.user).select_related("project").order_by("-pk")

    @extend_schema(request=AcceptSerializer, responses={
        200: JobSerializer, 409: OpenApiResponse(description="Not a conversion that failed its parity check, or no "
                                                             "reason given; detail says why.")})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Accept the conversion's ONNX artifact although it failed the parity check: the artifact becomes
        "accepted", the job succeeded (so benchmark and package may run), with who, when and why recorded."""
        from deployment.overrides import convert_accept

        body = AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = convert_accept(job=self.get_object(), user=request.user, reason=body.validated_data["reason"])
        return Response(JobSerializer(job).data)
