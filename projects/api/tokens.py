"""The requesting user's API tokens, and a team's audit log for its owners."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from projects import access
from projects.audit import audit_events_for_team
from projects.models import AuditEvent, Role
from projects.tokens import api_token_create, api_token_revoke, api_tokens_for


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    prefix = serializers.CharField(read_only=True, help_text="The key's first characters.")
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NewApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown this once: only its hash is kept.")


class ApiTokenViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet):
    """Your own API tokens: create (the key is shown once), list, revoke. Nobody else's, staff included."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends = []

    def get_queryset(self):
        return api_tokens_for(self.request.user)

    @extend_schema(request=ApiTokenSerializer, responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = ApiTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = api_token_create(user=request.user, name=serializer.validated_data["name"])
        token.key = key
        return Response(NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        api_token_revoke(token=instance, user=self.request.user)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="Empty when the action had no signed-in user.")

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "target_type", "target_id", "target_label", "detail"]


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("team_pk", int, OpenApiParameter.PATH)],
                                       summary="The team's audit log, newest first (owners only)"))
class TeamAuditViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = AuditEvent.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = AuditEventSerializer
    filter_backends = []

    def get_queryset(self):
        team = get_object_or_404(access.teams_for(self.request.user), pk=self.kwargs["team_pk"])
        if access.role_in(self.request.user, team) != Role.OWNER:
            raise PermissionDenied("Only the team's owners read its audit log.")
        return audit_events_for_team(team)
