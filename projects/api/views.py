"""REST views: scoped querysets from projects.access, writes through projects.services and projects.jobs.

Outsiders get 404 for another team's rows (the querysets never contain them); viewers get 403 on writes.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from projects import access, services
from projects.audit import audit_record
from projects.demo import demo_start
from projects.jobs.http import log_download_response
from projects.jobs.models import Job
from projects.jobs.registry import stage_exists, stages
from projects.jobs.selectors import log_page
from projects.jobs.services import job_cancel, job_enqueue, job_retry, pipeline_start
from projects.models import Membership, Team
from projects.uploads import UploadGuardedViewSet, upload_refusals

from . import serializers as s
from .filters import DatasetFilter, JobFilter, ProjectFilter
from .permissions import IsEditorOrReadOnly, IsOwnerOrReadOnly


class MemberAddThrottle(UserRateThrottle):
    """Adding members, per user: slow enough that trying usernames one by one gets nowhere."""

    scope = "member_add"

    def get_rate(self):
        return settings.TANGO_MEMBER_ADD_RATE


# Ids in paths: a number longer than any database id matches no route (a 404), not the database driver's 500.
ID_REGEX = "[0-9]{1,18}"

JOB_ACCEPTED = {202: s.JobSerializer, 409: OpenApiResponse(description="The stage cannot run now; detail says why.")}


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  viewsets.GenericViewSet):
    """The user's teams, with their role in each. Whoever creates a team owns it."""

    lookup_value_regex = ID_REGEX

    queryset = Team.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = s.TeamSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrReadOnly]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        user = self.request.user
        role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
        return access.teams_for(user).annotate(role=Subquery(role))

    @extend_schema(responses=s.MembershipSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def members(self, request, pk=None):
        """The team's members and their roles."""
        team = self.get_object()
        memberships = team.memberships.select_related("user").order_by("user__username")
        return Response(s.MembershipSerializer(memberships, many=True).data)

    @extend_schema(request=s.MemberAddSerializer, responses={202: s.MemberAddedSerializer})
    @members.mapping.post
    def add_member(self, request, pk=None):
        """Add a user by username (owners only); adding a member again sets their role.

        The answer is the same whether or not the account exists: anyone can own a team, so otherwise any user
        could test which usernames exist. The members list shows who was added; the action is rate limited."""
        team = self.get_object()
        throttle = MemberAddThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())
        serializer = s.MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username, role = serializer.validated_data["username"], serializer.validated_data["role"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is not None:
            services.membership_set(team=team, user=user, role=role, actor=request.user)
        detail = f"If an account named {username!r} exists, it is now a member of {team.name} as {role}."
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.RoleSerializer, responses=s.MembershipSerializer)
    @action(detail=True, methods=["patch"], url_path="members/(?P<username>[^/]+)")
    def member(self, request, pk=None, username=None):
        """Change a member's role (owners only); a body without a role changes nothing."""
        team = self.get_object()
        user = self._member(team, username)
        serializer = s.RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "role" in serializer.validated_data:
            membership = services.membership_set(team=team, user=user, role=serializer.validated_data["role"],
                                                 actor=request.user)
        else:
            membership = team.memberships.select_related("user").get(user=user)
        return Response(s.MembershipSerializer(membership).data)

    @extend_schema(request=None, responses={204: None})
    @member.mapping.delete
    def remove_member(self, request, pk=None, username=None):
        """Remove a member (owners only). The last owner stays."""
        team = self.get_object()
        services.membership_remove(team=team, user=self._member(team, username), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _member(team, username):
        return get_object_or_404(get_user_model(), username=username, memberships__team=team)


class DatasetViewSet(UploadGuardedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Datasets of the user's teams. Create is a multipart upload of a zip (editors and owners)."""

    upload_guard = staticmethod(services.guard_dataset_upload)
    # The team is named in the body, so before it is read: an editor of some team; the team's own role after.
    may_upload = staticmethod(access.require_editor_somewhere)

    lookup_value_regex = ID_REGEX

    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]
    filterset_class = DatasetFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "num_images"]

    def get_queryset(self):
        return access.datasets_for(self.request.user).select_related("created_by")

    def get_serializer_class(self):
        return s.DatasetUploadSerializer if self.action == "create" else s.DatasetSerializer

    @extend_schema(request={"multipart/form-data": s.DatasetUploadSerializer}, responses={201: s.DatasetSerializer})
    def create(self, request, *args, **kwargs):
        if refusals := upload_refusals(request):
            raise ValidationError(refusals)
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        access.require_editor(self.request.user, serializer.validated_data["team"])
        serializer.save()

    def perform_destroy(self, instance):
        services.dataset_delete(dataset=instance, user=self.request.user)


class ProjectViewSet(UploadGuardedViewSet, viewsets.ModelViewSet):
    """Projects of the user's teams; the detail shows each pipeline stage and what blocks it."""

    upload_action = "weights"
    upload_guard = staticmethod(services.guard_weights_upload)
    may_upload = staticmethod(access.project_to_change)

    lookup_value_regex = ID_REGEX

    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]
    filterset_class = ProjectFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self):
        projects = access.projects_for(self.request.user)
        if self.action == "list":  # team, dataset and device by id: loading their rows doubled the list's cost
            projects = projects.select_related(None)
        return projects.select_related("created_by")

    def get_serializer_class(self):
        return s.ProjectSerializer if self.action == "list" else s.ProjectDetailSerializer

    def perform_create(self, serializer):
        access.require_editor(self.request.user, serializer.validated_data["team"])
        # As the wizard's Create: automatic mode queues the pipeline at once (its first job shows in `stages`; a
        # broker that refuses it leaves that job failed with the reason).
        services.project_start_if_automatic(project=serializer.save(), user=self.request.user)

    def perform_destroy(self, instance):
        services.project_delete(project=instance, user=self.request.user)

    @extend_schema(request=None, responses=JOB_ACCEPTED,
                   parameters=[OpenApiParameter("stage", str, OpenApiParameter.PATH,
                                               enum=[stage.key for stage in stages()])])
    @action(detail=True, methods=["post"], url_path="stages/(?P<stage>[^/.]+)/run")
    def run_stage(self, request, pk=None, stage=None):
        """Queue one stage (editors and owners); 409 says what must run first."""
        if not stage_exists(stage):
            raise NotFound(f"No stage {stage!r}.")
        job = job_enqueue(project=self.get_object(), stage_key=stage, user=request.user)
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        methods=["POST"], summary="Upload pretrained weights (a .pt/.pth state dict) for transfer learning",
        request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string",
                                                                                   "format": "binary"}}}},
        responses=s.ProjectDetailSerializer)
    @extend_schema(methods=["DELETE"], summary="Train from scratch again", request=None,
                   responses=s.ProjectDetailSerializer)
    @action(detail=True, methods=["post", "delete"], parser_classes=[MultiPartParser])
    def weights(self, request, pk=None):
        """Weights are checked (suffix, size, a loadable state dict) before they are kept (editors and owners)."""
        project = self.get_object()
        if request.method == "DELETE":
            project = services.project_weights_clear(project=project)
        elif refusals := upload_refusals(request):
            raise ValidationError(refusals)
        elif "file" not in request.FILES:
            raise ValidationError({"file": "Attach the weights file as 'file'."})
        else:
            project = services.project_weights_set(project=project, upload=request.FILES["file"])
        return Response(s.ProjectDetailSerializer(project, context={"request": request}).data)

    @extend_schema(request=s.ProjectSerializer, responses=s.ProjectReviewSerializer)
    @action(detail=False, methods=["post"])
    def review(self, request):
        """What creating this project would make, checked and not saved, as the wizard's Review step shows it: the
        model the recommend stage would pick and warnings; a 400 gives the reasons Create would (editors)."""
        serializer = s.ProjectSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        access.require_editor(request.user, serializer.validated_data["team"])
        model, warnings = services.project_review(services.project_draft(user=request.user,
                                                                         **serializer.validated_data))
        return Response(s.ProjectReviewSerializer({"model": model, "warnings": warnings}).data)

    @extend_schema(request=s.DemoSerializer, responses={201: s.ProjectDetailSerializer})
    @action(detail=False, methods=["post"])
    def demo(self, request):
        """Create a demo project (digits for classification) and queue its whole pipeline (editors of a team)."""
        query = s.DemoSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        project = demo_start(user=request.user, task=query.validated_data["task"])
        return Response(s.ProjectDetailSerializer(project, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JOB_ACCEPTED)
    @action(detail=True, methods=["post"], url_path="pipeline/run")
    def run_pipeline(self, request, pk=None):
        """Queue the first stage not yet done (editors and owners)."""
        job = pipeline_start(project=self.get_object(), user=request.user)
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(list=extend_schema(
    parameters=[OpenApiParameter("project_pk", int, OpenApiParameter.PATH)], summary="A project's jobs, newest first"))
class ProjectJobViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Job.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = s.JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        project = get_object_or_404(access.projects_for(self.request.user), pk=self.kwargs["project_pk"])
        return project.jobs.select_related("requested_by")


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Pipeline jobs of the user's teams, their logs, and cancel/retry (editors and owners); for staff also the
    catalog's jobs (no project: this server measuring itself), which only staff see and change."""

    lookup_value_regex = ID_REGEX

    serializer_class = s.JobSerializer
    permission_classes = [IsAuthenticated, IsEditorOrReadOnly]
    filterset_class = JobFilter
    ordering_fields = ["created_at"]

    def get_queryset(self):
        jobs = access.viewable_jobs_for(self.request.user)
        if self.action == "log":  # the log answers with the job's status alone
            return jobs.only("id", "status")
        if self.action == "list":  # the list shows the project's id, not its row (nor its team's): a lighter query
            return jobs.select_related("requested_by")
        return jobs.select_related("project__team", "requested_by")

    @extend_schema(request=None, responses={200: s.JobSerializer, 409: JOB_ACCEPTED[409]})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued job at once, or ask a running one to stop at its next step."""
        return Response(s.JobSerializer(job_cancel(job=self.get_object(), user=request.user)).data)

    @extend_schema(request=None, responses=JOB_ACCEPTED)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed or cancelled job again, as its next attempt."""
        job = job_retry(job=self.get_object(), user=request.user)
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[s.LogQuerySerializer], responses=s.LogPageSerializer)
    # No filter backends: ?after= and ?limit= page the log, and building the job list's filter set for one job's
    # lookup was half of a poll's cost (bench/load.py).
    @action(detail=True, methods=["get"], filter_backends=[])
    def log(self, request, pk=None):
        """Log lines with seq greater than ?after=, oldest first, at most ?limit= of them."""
        job = self.get_object()
        query = s.LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = log_page(job.pk, **query.validated_data)
        return Response(s.LogPageSerializer({"status": job.status, "lines": page.lines, "next_after": page.next_after,
                                             "has_more": page.has_more}).data)

    @extend_schema(operation_id="jobs_log_text", responses={(200, "text/plain"): OpenApiTypes.STR})
    def log_text(self, request, pk=None):
        """The whole log as a download, streamed (routed by hand: the file name takes no trailing slash)."""
        job = self.get_object()
        audit_record(actor=request.user, action="downloaded", target=job, detail="log")
        return log_download_response(job)
