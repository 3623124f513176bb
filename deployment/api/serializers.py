from rest_framework import serializers

from deployment.models import Artifact, Trial
from deployment.selectors import artifacts_for
from projects.access import projects_for
from projects.datasets.images import IMAGE_TYPE_NAMES
from projects.models import Project


class ArtifactSerializer(serializers.ModelSerializer):
    file_name = serializers.CharField(read_only=True)

    class Meta:
        model = Artifact
        fields = ["id", "project", "job", "training_run", "kind", "engine", "precision", "file_name", "size_bytes",
                  "sha256", "status", "runs", "checks", "benchmark", "created_at"]
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
    image = serializers.FileField(required=False, help_text=f"{IMAGE_TYPE_NAMES}, at most 10 MB.")
    top_k = serializers.IntegerField(required=False, default=3, min_value=1, max_value=10)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")  # none when the schema is generated
        if request is not None:
            self.fields["project"].queryset = projects_for(request.user)
            self.fields["artifact"].queryset = artifacts_for(request.user)


class ModelImportSerializer(serializers.Serializer):
    """Bring your own model. labels: one per output, the dataset's classes in the model's order (default: the
    dataset's); mean/std: the model's normalisation of pixels in [0, 1] (default: ImageNet's; detection: none)."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.none())
    file = serializers.FileField(help_text="One .onnx file, or TorchScript (.ts/.pt saved with torch.jit.save).")
    labels = serializers.ListField(child=serializers.CharField(), required=False)
    input_size = serializers.IntegerField(required=False, min_value=8, max_value=1280)
    mean = serializers.ListField(child=serializers.FloatField(), required=False, min_length=3, max_length=3)
    std = serializers.ListField(child=serializers.FloatField(), required=False, min_length=3, max_length=3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["project"].queryset = projects_for(request.user)


class AccuracyWarningSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(
        choices=["at_chance", "too_few"],
        help_text="at_chance: guessing reaches this score at least 1% of the time and a clearly useful model (right "
                  "on half of what guessing gets wrong) less than 1%; too_few: the images scored cannot tell the two "
                  "apart (no causes are given then).")
    message = serializers.CharField()
    measured = serializers.CharField(help_text="What was measured, in words.")
    top1 = serializers.FloatField(help_text="Top-1 accuracy in percent.")
    chance = serializers.FloatField(help_text="What guessing scores, in percent (100 / classes).")
    n_images = serializers.IntegerField()
    split = serializers.CharField(help_text="validation, or training where the dataset has no validation split.")
    causes = serializers.ListField(child=serializers.CharField(), help_text="Likely causes, most likely first.")
    suggested_order = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                            help_text="The class order the model's outputs fit, when one does.")


class ModelImportResultSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    job = serializers.IntegerField(help_text="The succeeded train job that records the import.")
    training_run = serializers.IntegerField()
    model_name = serializers.CharField()
    format = serializers.CharField()
    checks = serializers.DictField(help_text="What was checked: opset, input and output shapes, one run here, and "
                                             "(classification) `validation`: top-1 on the project's validation "
                                             "images, the chance level and the confusion counts.")
    accuracy_warning = AccuracyWarningSerializer(
        allow_null=True, help_text="Set when the model does not score clearly better than chance on the project's "
                                   "images: at chance (a wrong label order, mean/std or input size), or too few "
                                   "images to tell (`verdict`); the model is imported all the same.")
