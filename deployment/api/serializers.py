from rest_framework import serializers

from deployment.models import Artifact, Trial
from deployment.selectors import artifacts_for
from projects.access import projects_for
from projects.models import Project


class ArtifactSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(read_only=True)

    class Meta:
        model = Artifact
        fields = ["id", "project", "job", "training_run", "kind", "engine", "precision", "file_name", "size_bytes",
                  "sha256", "status", "checks", "benchmark", "created_at"]
        read_only_fields = fields


class TrialSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField(help_text="The uploaded image (detection: with ?annotated=1, the "
                                                            "boxes drawn on it).")

    class Meta:
        model = Trial
        fields = ["id", "project", "artifact", "requested_by", "image_name", "image_url", "top_k", "status", "result",
                  "error", "created_at", "finished_at"]
        read_only_fields = fields

    def get_image_url(self, trial) -> str:
        return f"/api/trials/{trial.pk}/image/"


class TrialCreateSerializer(serializers.Serializer):
    """project and artifact are looked up among the caller's teams' rows only: another team's ids do not exist."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.none())
    artifact = serializers.PrimaryKeyRelatedField(queryset=Artifact.objects.none())
    image = serializers.FileField(required=False, help_text="JPEG, PNG, GIF, BMP or WebP, at most 10 MB.")
    top_k = serializers.IntegerField(required=False, default=3, min_value=1, max_value=10)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")  # none when the schema is generated
        if request is not None:
            self.fields["project"].queryset = projects_for(request.user)
            self.fields["artifact"].queryset = artifacts_for(request.user)
