from rest_framework import serializers

from deployment.models import Artifact


class ArtifactSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(read_only=True)

    class Meta:
        model = Artifact
        fields = ["id", "project", "job", "training_run", "kind", "engine", "precision", "file_name", "size_bytes",
                  "sha256", "status", "checks", "benchmark", "created_at"]
        read_only_fields = fields
