"""The device catalog (read for everyone signed in, written by staff) and the engine registry (read-only)."""

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

from recommender.models import Device
from tango_common.engines import ENGINE_CHOICES, ENGINES

from .serializers import DeviceSerializer, EngineSerializer


class IsStaffOrReadOnly(BasePermission):
    message = "Only staff can change the device catalog."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or request.user.is_staff


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
