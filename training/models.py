from django.db import models


class TrainingRun(models.Model):
    """What a train job produced: architecture, hyperparameters, data version, metrics per epoch, weights."""

    job = models.OneToOneField("projects.Job", on_delete=models.CASCADE, related_name="training_run")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="training_runs")
    model_name = models.CharField(max_length=60)
    architecture = models.JSONField(default=dict, help_text="Family, level, classes, input size, params, FLOPs.")
    hyperparameters = models.JSONField(default=dict)
    dataset_sha256 = models.CharField(max_length=64, help_text="The dataset version trained on.")
    history = models.JSONField(default=list, help_text="One record per epoch.")
    metrics = models.JSONField(default=dict, help_text="Best epoch, final metrics, per-class accuracy, confusion.")
    weights_path = models.CharField(max_length=255, blank=True, help_text="Relative to MEDIA_ROOT.")
    weights_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.model_name} for {self.project}"
