"""The job runtime's tables: one row per run of a stage, and its numbered console lines.

They live in the projects app (app_label "projects", tables projects_job and projects_joblogline), registered by
projects.models importing this module.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .registry import Queue


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """One run of one stage, executed by a Celery task: a project's pipeline stage, or (project empty) a catalog
    stage that belongs to no project, such as this server measuring itself. Catalog jobs are staff's alone."""

    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="jobs")
    stage = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0)
    progress_message = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    queue = models.CharField(max_length=20, choices=Queue.choices, default=Queue.CPU)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # What a catalog job was started with (validated by its stage's options); a project's stages read
    # project.options instead.
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the job was last handed to the broker, and since when no live worker consumes its queue (the reaper's
    # bookkeeping for queued jobs: projects.jobs.reaper).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    unserved_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "stage", "-created_at"]), models.Index(fields=["status"])]
        constraints = [
            # One queued or running job per catalog stage: two clicks (or two staff) cannot start it twice. A
            # project's stages are guarded by locking the project row instead (projects.jobs.services).
            models.UniqueConstraint(
                fields=["stage"], condition=Q(project__isnull=True, status__in=[s.value for s in ACTIVE_STATUSES]),
                name="one_active_catalog_job_per_stage"),
        ]

    def __str__(self):
        return f"{self.project or 'catalog'} / {self.stage} #{self.pk}"

    @property
    def is_catalog(self) -> bool:
        """A job of no project (a catalog stage): staff start, see and change it."""
        return self.project_id is None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class JobLogLine(models.Model):
    """One console line of a job; seq is dense per job (1, 2, 3…) across attempts, so gaps are detectable."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="log_seq_unique_per_job")]

    def __str__(self):
        return f"{self.job_id}:{self.seq} {self.text[:60]}"


class WorkerHeartbeat(models.Model):
    """A Celery worker is alive and consumes a queue: one row per worker and queue, refreshed every few seconds by
    the worker's main process (projects.jobs.workers). A row whose beat is older than TANGO_JOB_STALE_SECONDS is a
    worker that is gone; the reaper and the project page read these rows to tell whether a queue is served."""

    worker = models.CharField(max_length=200)  # Celery's node name, e.g. celery@host
    queue = models.CharField(max_length=20)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "queue"], name="worker_heartbeat_unique_queue")]

    def __str__(self):
        return f"{self.worker} on {self.queue}"
