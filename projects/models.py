from pathlib import Path

from django.conf import settings
from django.db import models


class Task(models.TextChoices):
    CLASSIFICATION = "classification", "Image classification"
    DETECTION = "detection", "Object detection"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return self.role in (Role.OWNER, Role.EDITOR)


class Dataset(models.Model):
    """An uploaded dataset that passed validation; its files live under MEDIA_ROOT/<path>."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    task = models.CharField(max_length=20, choices=Task.choices)
    path = models.CharField(max_length=255, help_text="Folder relative to MEDIA_ROOT.")
    class_names = models.JSONField(default=list)
    stats = models.JSONField(default=dict, help_text="Images per class and split, image sizes, boxes per class.")
    num_images = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, help_text="Hash of the uploaded archive: the dataset's version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="dataset_name_unique_in_team")]

    def __str__(self):
        return self.name

    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.path


class Precision(models.TextChoices):
    FP32 = "fp32", "FP32"
    FP16 = "fp16", "FP16"
    BF16 = "bf16", "BF16"
    INT8 = "int8", "INT8"


class RunMode(models.TextChoices):
    STEP = "step", "Step by step"
    AUTO = "auto", "Automatic"


class Project(models.Model):
    """The one record every pipeline stage reads: task, data, target device and its software environment."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=20, choices=Task.choices)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="projects")
    device = models.ForeignKey("recommender.Device", on_delete=models.PROTECT, related_name="projects")
    engine = models.CharField(max_length=20)
    precision = models.CharField(max_length=4, choices=Precision.choices, default=Precision.FP32)
    input_size = models.PositiveIntegerField(default=224)
    latency_budget_ms = models.FloatField()
    memory_limit_mb = models.PositiveIntegerField(null=True, blank=True)
    run_mode = models.CharField(max_length=4, choices=RunMode.choices, default=RunMode.STEP)
    options = models.JSONField(default=dict, blank=True)
    weights_path = models.CharField(max_length=255, blank=True,
                                    help_text="User-supplied pretrained state dict, relative to MEDIA_ROOT.")
    weights_name = models.CharField(max_length=255, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="project_name_unique_in_team")]

    def __str__(self):
        return self.name


class AuditAction(models.TextChoices):
    CREATED = "created", "created"
    STARTED = "started", "started"
    CANCELLED = "cancelled", "cancelled"
    DELETED = "deleted", "deleted"
    DOWNLOADED = "downloaded", "downloaded"
    ROLE_CHANGED = "role_changed", "changed the role of"
    MEMBER_REMOVED = "member_removed", "removed"
    TOKEN_CREATED = "token_created", "created an API token"
    TOKEN_REVOKED = "token_revoked", "revoked an API token"
    OVERRIDDEN = "overridden", "accepted despite a failed check"


class AuditEvent(models.Model):
    """Who did what to which row, when. Written by the services; read by team owners and in the admin.

    The actor's and target's names are copied, so the record still reads right after either is deleted."""

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"{self.actor_name or 'someone'} {self.get_action_display()} {self.target_type} {self.target_label}"


class ApiToken(models.Model):
    """A named API key of one user. Only its SHA-256 is stored: the key itself is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to tell tokens apart.")
    key_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
# The job runtime's tables are this app's too (app_label "projects"). Django registers the models it finds when it
# imports projects.models, so the runtime's own module is imported here; use them from projects.jobs.models.
from .jobs import models as _job_models  # noqa: E402, F401
