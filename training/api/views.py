"""Searches (hyperparameter and supernet) of the user's teams: their summaries, and adopting their outcome."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from projects.access import jobs_for
from projects.api.permissions import IsEditorOrReadOnly
from projects.api.serializers import JobSerializer
from training.automl import ADOPTERS, search_adopt


class SearchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    stage = serializers.CharField()
    status = serializers.CharField()
    result = serializers.JSONField(help_text="Trials, best-so-far curve and importances (hpo); the supernet and "
                                             "a subnet per catalog device (nas).")


class AdoptSerializer(serializers.Serializer):
    device = serializers.CharField(required=False, help_text="Supernet search: adopt this catalog device's subnet "
                                                             "instead of the project device's.")


class SearchViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Hyperparameter searches (stage `hpo`) and supernet searches (stage `nas`); start one with the project's
    run-stage action."""

    serializer_class = SearchSerializer
    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]

    def get_queryset(self):
        return jobs_for(self.request.user).filter(stage__in=list(ADOPTERS)).select_related("project").order_by("-pk")

    @extend_schema(request=AdoptSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def adopt(self, request, pk=None):
        """Train with the search's outcome: the best hyperparameters, or a device's subnet with its inherited
        weights. Queues the train stage and returns its job."""
        body = AdoptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = search_adopt(job=self.get_object(), user=request.user, device_name=body.validated_data.get("device"))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
