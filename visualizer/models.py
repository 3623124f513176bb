from django.conf import settings
from django.db import models


class Architecture(models.Model):
    """A saved version of a project's network: the zoo model it started from, the edits, and the graph they give.

    Team-scoped through its project. The version the project has chosen (project.options["architecture"]) is what
    the train stage trains.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="architectures")
    version = models.PositiveIntegerField()
    base_model = models.CharField(max_length=60, help_text="The zoo model the edits start from.")
    input_size = models.PositiveIntegerField()
    num_classes = models.PositiveIntegerField()
    edits = models.JSONField(default=list, help_text="The edits, in order (see visualizer.graph.edits).")
    graph = models.JSONField(default=dict, help_text="The edited network: layers, shapes, blocks.")
    summary = models.JSONField(default=dict, help_text="Parameters, FLOPs, predicted latency and memory at save, "
                                                       "and what changed from the base model.")
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="architecture_version_unique")]

    def __str__(self):
        return f"{self.project} network v{self.version} ({self.base_model})"

    @property
    def team(self):
        return self.project.team
