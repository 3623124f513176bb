"""The device catalog (read for everyone signed in, written by staff), this server's calibration (staff) and the
engine registry (read-only)."""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from projects import access
from projects.api.serializers import JobSerializer
from projects.engine_support import engine_choices, precision_choices
from recommender.models import Device
from recommender.selectors import (
    device_records_with_errors,
    error_summary,
    project_recommendation_read,
    visible_records,
)
from recommender.services import benchmark_record_delete, calibration_start, project_model_choose
from tango_common.engines import ENGINE_CHOICES, ENGINES

from .serializers import (
    CalibrateSerializer,
    ChoicesQuerySerializer,
    DeviceChoicesSerializer,
    DeviceRecordsSerializer,
    DeviceSerializer,
    EngineSerializer,
    ModelChoiceSerializer,
    RecommendationSerializer,
)


class IsStaffOrReadOnly(BasePermission):
    message = "Only staff can change the device catalog."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or request.user.is_staff


class IsStaff(BasePermission):
    message = "Only staff can measure this server."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff)


class DeviceFilter(django_filters.FilterSet):
    engine = django_filters.ChoiceFilter(choices=ENGINE_CHOICES, method="filter_engine",
                                         label="Devices that run this engine")

    class Meta:
        model = Device
        fields = ["tier", "accelerator_kind", "is_active", "engine"]

    def filter_engine(self, queryset, name, value):
        # engines is a JSON list; SQLite has no JSON "contains", and the catalog is small.
        return queryset.filter(pk__in=[d.pk for d in queryset.only("pk", "engines") if value in d.engines])


class DeviceViewSet(viewsets.ModelViewSet):
    queryset = Device.objects.all()
    serializer_class = DeviceSerializer
    lookup_value_regex = "[0-9]{1,18}"  # longer numbers name no row: a 404, not SQLite's OverflowError
    permission_classes = [IsAuthenticated, IsStaffOrReadOnly]
    filterset_class = DeviceFilter
    search_fields = ["name", "vendor", "cpu_name", "accelerator_name", "os"]
    ordering_fields = ["name", "tier", "peak_fp32_gflops", "memory_mb"]

    @extend_schema(responses=DeviceRecordsSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def records(self, request, pk=None):
        """The device's benchmark records (shared calibration ones and the caller's teams'), each with the latency
        the model fitted to the others predicted for it, and the error."""
        rows = device_records_with_errors(device=self.get_object(), teams=access.teams_for(request.user))
        return Response({"summary": error_summary(rows), "records": rows})

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path="records/(?P<record_id>[0-9]{1,18})",
            permission_classes=[IsAuthenticated, IsStaffOrReadOnly])
    def record(self, request, pk=None, record_id=None):
        """Staff: remove one of the device's benchmark records (a bad measurement the predictions should not learn
        from), as the admin's delete does; the audit log keeps who removed it. Only a record `records` shows them:
        another team's is a team's row, and does not exist for staff who are not its members (404)."""
        records = self.get_object().benchmark_records.filter(visible_records(access.teams_for(request.user)))
        record = get_object_or_404(records.select_related("team"), pk=record_id)
        benchmark_record_delete(record=record, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[ChoicesQuerySerializer], responses=DeviceChoicesSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def choices(self, request, pk=None):
        """What a project on this device may choose for ?task=: each engine the device runs and its precisions,
        what this version cannot build with why (the project forms' engine and precision lists; creating or
        changing a project refuses the same choices with the same words)."""
        query = ChoicesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        task, device = query.validated_data["task"], self.get_object()
        engines = [{**vars(engine), "precisions": [vars(p) for p in precision_choices(task=task, engine=engine.value)]}
                   for engine in engine_choices(task=task, device=device)]
        return Response(DeviceChoicesSerializer({"task": task, "engines": engines}).data)

    @extend_schema(request=CalibrateSerializer, responses={
        202: JobSerializer, 409: OpenApiResponse(description="Not this server, or a calibration is already running.")})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsStaff])
    def calibrate(self, request, pk=None):
        """Staff: queue the calibration job on the device that is this server (a job of no project; follow it at
        /api/jobs/{id}/ and its log, or live over /ws/jobs/{id}/). It times a spread of candidates with ONNX
        Runtime and stores the records, as `manage.py tango calibrate` does."""
        options = CalibrateSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        job = calibration_start(device=self.get_object(), quick=options.validated_data["quick"], user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(retrieve=extend_schema(parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH,
                                                                        enum=list(ENGINES))]))
class EngineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The inference engines TANGO targets (tango_common.engines)."""

    serializer_class = EngineSerializer
    pagination_class = None
    filter_backends: list = []
    lookup_field = "key"

    def get_queryset(self):
        return list(ENGINES.values())

    def get_object(self):
        try:
            return ENGINES[self.kwargs["key"]]
        except KeyError:
            raise NotFound(f"No engine {self.kwargs['key']!r}.") from None


class ProjectRecommendationViewSet(viewsets.GenericViewSet):
    """A project's ranking (from its latest recommend job), the paper's choice, and the model training will use;
    and the choice itself: accept the top candidate or pick another."""

    permission_classes = [IsAuthenticated]
    serializer_class = RecommendationSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return access.projects_for(self.request.user)

    def _project(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["project_id"])

    @extend_schema(responses=RecommendationSerializer)
    def retrieve(self, request, project_id: int):
        return Response(project_recommendation_read(self._project()))

    @extend_schema(request=ModelChoiceSerializer, responses=RecommendationSerializer)
    def choice(self, request, project_id: int):
        project = self._project()
        access.require_editor(request.user, project.team)
        choice = ModelChoiceSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        try:
            project_model_choose(project=project, model_name=choice.validated_data["model"])
        except ValueError as error:
            raise ValidationError({"model": [str(error)]}) from None
        return Response(project_recommendation_read(project))
