"""Serializers for teams, datasets, projects and jobs.

Writes go through projects.services; the Django ValidationError they raise becomes a 400 with field messages
(tango_site.api_errors). Related rows are looked up in the requesting user's scope (projects.access), so an
id from another team reads as "does not exist".
"""

from django.contrib.auth import get_user_model
from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from projects import access, services
from projects.devices import device_model
from projects.jobs.models import Job, JobLogLine, JobStatus
from projects.jobs.selectors import stage_rows
from projects.models import Dataset, Membership, Project, Role, Task, Team
from projects.selectors import imported_model


@extend_schema_field(OpenApiTypes.INT)
class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A primary key looked up among the rows `scope(user)` returns (e.g. access.teams_for)."""

    def __init__(self, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.scope(self.context["request"].user)


def timezone_pinned(field: serializers.DateTimeField) -> serializers.DateTimeField:
    """The field with the current time zone read once, for the rest of the answer: DRF looks it up (a context-local
    read) for every datetime it writes, and it cannot change while one answer is written."""
    if not hasattr(field, "timezone"):
        field.timezone = field.default_timezone()
    return field


class ListedSerializer(serializers.ModelSerializer):
    """A serializer that lists many rows per answer: which fields it reads is worked out once per answer.

    DRF's to_representation walks `fields` through a generator for every row to skip write-only ones: an eighth of
    the API project list's CPU (50 rows of 17 fields) under a profiler. A list's rows share one child serializer,
    whose fields do not change once built; its datetime fields read the time zone once (timezone_pinned)."""

    @cached_property
    def _readable_fields(self):
        return [timezone_pinned(field) if isinstance(field, serializers.DateTimeField) else field
                for field in self.fields.values() if not field.write_only]


# --- teams ----------------------------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True, help_text="The requesting user's role in the team.")

    class Meta:
        model = Team
        fields = ["id", "name", "role", "created_at"]

    def create(self, validated_data):
        team = services.team_create(name=validated_data["name"], owner=self.context["request"].user)
        team.role = Role.OWNER  # what the list annotates
        return team


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.SlugRelatedField(source="user", slug_field="username",
                                            queryset=get_user_model().objects.all())

    class Meta:
        model = Membership
        fields = ["username", "role"]
        validators = []  # adding an existing member changes their role (membership_set upserts)


class MemberAddSerializer(serializers.Serializer):
    """Who to add: a plain name, so that an unknown one fails no differently from a known one."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class MemberAddedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RoleSerializer(serializers.Serializer):
    """A PATCH: the fields left out stay as they are."""

    role = serializers.ChoiceField(choices=Role.choices, required=False)


# --- datasets -------------------------------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Dataset
        fields = ["id", "team", "name", "task", "class_names", "stats", "num_images", "size_bytes", "sha256",
                  "created_by", "created_at"]
        read_only_fields = fields


class DatasetUploadSerializer(serializers.Serializer):
    """Multipart upload: the zip is validated and unpacked by services.dataset_create."""

    team = ScopedPrimaryKeyField(scope=access.teams_for)
    name = serializers.CharField(max_length=100)
    task = serializers.ChoiceField(choices=Task.choices)
    file = serializers.FileField(write_only=True, help_text="A zip archive in the layout the task expects.")

    def create(self, validated_data):
        return services.dataset_create(
            team=validated_data["team"], name=validated_data["name"], task=validated_data["task"],
            upload=validated_data["file"], user=self.context["request"].user,
        )

    def to_representation(self, instance):
        return DatasetSerializer(instance, context=self.context).data


# --- jobs -----------------------------------------------------------------------------------------------------


class JobSerializer(ListedSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = ["id", "project", "stage", "params", "status", "progress", "progress_message", "result", "error",
                  "queue", "attempt", "cancel_requested", "worker_host", "requested_by", "created_at", "started_at",
                  "finished_at", "heartbeat_at"]
        read_only_fields = fields


class JobSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "status", "progress"]
        read_only_fields = fields


class LogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="Return lines with seq greater than this.")
    limit = serializers.IntegerField(min_value=1, max_value=5000, default=500)


class LogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogLine
        fields = ["seq", "text", "created_at"]

    def to_representation(self, line):
        # What the generated fields give, without DRF's per-field walk (a poll carries up to 500 lines), and with
        # the current time zone looked up once per answer rather than once per line.
        created_at = timezone_pinned(self.fields["created_at"])
        return {"seq": int(line.seq), "text": str(line.text),
                "created_at": created_at.to_representation(line.created_at)}


class LogPageSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=JobStatus.choices,
                                     help_text="The job's status: stop polling once it is finished.")
    lines = LogLineSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as ?after= to get the following lines.")
    has_more = serializers.BooleanField(help_text="More lines exist beyond this page already.")


# --- projects -------------------------------------------------------------------------------------------------


class DemoSerializer(serializers.Serializer):
    task = serializers.ChoiceField(choices=Task.choices, default=Task.CLASSIFICATION)


class StageSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    latest_job = JobSummarySerializer(allow_null=True)
    blockers = serializers.ListField(child=serializers.CharField(), help_text="Why the stage cannot start now.")
    worker_running = serializers.BooleanField(
        help_text="Whether a live worker consumes the stage's queue; if not, its jobs start when one is back.")
    preview = serializers.CharField(help_text="What the project page says about the stage before it runs (the "
                                    "train stage: how long training will take on this server); may be empty.")


class ProjectSerializer(ListedSerializer):
    team = ScopedPrimaryKeyField(scope=access.teams_for, help_text="Set on creation; a project stays in its team.")
    dataset = ScopedPrimaryKeyField(scope=access.datasets_for)
    device = serializers.PrimaryKeyRelatedField(queryset=device_model().objects.all())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Project
        fields = ["id", "team", *services.PROJECT_FIELDS, "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "latency_budget_ms": {"required": False, "help_text": "Defaults to the device's budget."},
            "input_size": {"help_text": "Pixels. Left out: from the dataset's images (never enlarged; at most 224 "
                                        "for classification, 640 for detection)."},
            "options": {"help_text": "Stage options, checked against each stage's declared types and bounds (unknown "
                                     "keys and out-of-bound values are refused with the reason): `model` (a model "
                                     "name) and, per stage, e.g. `train` {epochs 1-500, batch_size 2-1024, lr 1e-6-5, "
                                     "optimizer sgd|adamw, augmentation none|light|standard|strong, patience 0-500, "
                                     "min_accuracy 0-1, …; left out: derived from the dataset}, `hpo`, `nas`. No "
                                     "option names a file. A PATCH replaces the groups it sends and keeps the "
                                     "others (null removes one); PUT replaces them all."},
        }
        validators = []  # services.project_create/update own the rules, the unique name included

    def validate_team(self, team):
        if self.instance is not None and team != self.instance.team:
            raise serializers.ValidationError("A project cannot move to another team.")
        return team

    def create(self, validated_data):
        return services.project_create(user=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        validated_data.pop("team", None)
        if self.partial and isinstance(validated_data.get("options"), dict):
            # As the settings page does: a PATCH changes the groups it sends and keeps the rest (the model picked on
            # the recommend card survives a change of epochs); null removes a group. PUT replaces them all.
            merged = {**instance.options, **validated_data["options"]}
            validated_data["options"] = {key: value for key, value in merged.items() if value is not None}
        return services.project_update(project=instance, **validated_data)


class ProjectReviewSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The model the recommend stage would pick, in words (the wizard's "
                                            "Review); may be empty.")
    warnings = serializers.ListField(child=serializers.CharField(),
                                     help_text="About the data (too few images, imbalance, an input far above the "
                                               "images' size) and the pick.")


class ImportedModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    format = serializers.CharField(help_text="ONNX or TorchScript.")
    validation = serializers.DictField(allow_null=True, help_text="Classification: top-1 in percent on the "
                                       "project's validation images at import, the chance level and the counts.")
    accuracy_warning = serializers.DictField(
        allow_null=True, help_text="Set when that score is not clearly better than chance: `verdict` (at_chance, or "
                                   "too_few images to tell), `message`, `measured`, `top1`, `chance`, `causes` (label "
                                   "order, mean/std, input size), `suggested_order`.")


class ProjectDetailSerializer(ProjectSerializer):
    stages = serializers.SerializerMethodField()
    imported_model = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "weights_name", "weights_sha256", "stages", "imported_model"]
        read_only_fields = ["weights_name", "weights_sha256"]

    @extend_schema_field(ImportedModelSerializer(allow_null=True))
    def get_imported_model(self, project):
        """The imported model that is the project's model, or null where it was trained here (or not yet)."""
        return imported_model(project)

    @extend_schema_field(StageSerializer(many=True))
    def get_stages(self, project):
        rows = [{"key": row.stage.key, "label": row.stage.label, "latest_job": row.job, "blockers": row.blockers,
                 "worker_running": row.worker_running, "preview": row.stage.preview_line(project)}
                for row in stage_rows(project, editable=False)]
        return StageSerializer(rows, many=True).data
