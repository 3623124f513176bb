"""Architectures (saved versions of a project's network) of the user's teams: preview edits with their costs,
save a version, choose which version trains. The editor page calls exactly these."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from projects import access
from projects.api.permissions import IsEditorOrReadOnly

from ..models import Architecture
from ..services import NetworkError, architecture_choose, architecture_save, network_preview
from .serializers import ArchitectureSerializer, ChooseSerializer, EditsSerializer, PreviewSerializer


class ArchitectureViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ArchitectureSerializer
    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]

    def get_queryset(self):
        rows = Architecture.objects.filter(project__in=access.projects_for(self.request.user)).select_related(
            "project__team", "created_by")
        project = self.request.query_params.get("project")
        if project and project.isdigit():
            rows = rows.filter(project_id=int(project))
        return rows.order_by("project_id", "-version")

    @extend_schema(parameters=[OpenApiParameter("project", int, description="Only this project's versions.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _edits(self, request):
        body = EditsSerializer(data=request.data, user=request.user)
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=EditsSerializer, responses={201: ArchitectureSerializer})
    def create(self, request):
        """Save the edited network as the project's next version; the train stage then trains it."""
        data = self._edits(request)
        project = data["project"]
        if not access.can_edit(request.user, project.team):
            raise PermissionDenied("Viewers cannot change anything in this team.")
        try:
            architecture = architecture_save(project=project, user=request.user,
                                             base_model=data.get("base_model") or _default_model(project),
                                             edits=data["edits"], note=data.get("note", ""))
        except NetworkError as exc:
            raise ValidationError({"edits": [str(exc)]}) from None
        return Response(self.get_serializer(architecture).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EditsSerializer, responses={200: PreviewSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """The network after the edits, without saving: shapes, what does not fit, engine flags, costs on the
        project's device (any member may look)."""
        data = self._edits(request)
        try:
            result = network_preview(project=data["project"], base_model=data.get("base_model") or None,
                                     edits=data["edits"])
        except NetworkError as exc:
            raise ValidationError({"edits": [str(exc)]}) from None
        return Response(result)

    @extend_schema(request=ChooseSerializer, responses={200: ArchitectureSerializer})
    @action(detail=True, methods=["post"])
    def choose(self, request, pk=None):
        """Train this version (or, with chosen=false, the unedited zoo model again)."""
        architecture = self.get_object()
        body = ChooseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        architecture_choose(project=architecture.project,
                            architecture=architecture if body.validated_data["chosen"] else None)
        architecture.project.refresh_from_db()
        return Response(self.get_serializer(get_object_or_404(self.get_queryset(), pk=architecture.pk)).data)


def _default_model(project) -> str:
    from ..services import base_model_for

    try:
        return base_model_for(project)
    except NetworkError as exc:
        raise ValidationError({"base_model": [str(exc)]}) from None
