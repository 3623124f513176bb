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


# The job runtime's tables are this app's too (app_label "projects"). Django registers the models it finds when it
# imports projects.models, so the runtime's own module is imported here; use them from projects.jobs.models.
from .jobs import models as _job_models  # noqa: E402, F401
