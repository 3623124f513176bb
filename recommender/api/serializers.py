import copy

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from projects.models import Task
from recommender.engine.table1 import paper_choice
from recommender.models import Device
from recommender.services import device_row
from tango_common.engines import Accelerator


class PaperChoiceSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="Zoo key.")
    model_label = serializers.CharField(help_text="As the paper prints it.")
    family = serializers.CharField()
    rule = serializers.ChoiceField(choices=["table1", "nearest"],
                                   help_text="table1: the device's own row; nearest: borrowed from the paper "
                                             "device of its tier nearest in compute.")
    reason = serializers.CharField()


class PaperRulesSerializer(serializers.Serializer):
    detection = PaperChoiceSerializer(allow_null=True)
    classification = PaperChoiceSerializer(allow_null=True)


class DeviceSerializer(serializers.ModelSerializer):
    engines = serializers.ListField(child=serializers.CharField(max_length=20),
                                    help_text="Engine keys the device runs (see /api/engines/).")
    paper_rules = serializers.SerializerMethodField(help_text="The TANGO paper's Table 1 rule for each task.")

    class Meta:
        model = Device
        fields = "__all__"

    @extend_schema_field(PaperRulesSerializer)
    def get_paper_rules(self, device) -> dict:
        if "paper_rows" not in self.context:  # read once per request, not once per device
            paper = Device.objects.exclude(paper_detection_model="", paper_classification_model="")
            self.context["paper_rows"] = [device_row(d) for d in paper]
        return {task: self._choice(device, task) for task in ("detection", "classification")}

    def _choice(self, device, task):
        try:
            return paper_choice(device=device_row(device), task=task,
                                paper_devices=self.context["paper_rows"]).as_dict()
        except ValueError:  # the catalog has no paper device to borrow from
            return None

    def validate(self, attrs):
        """The model's own rules (engines vs accelerator) apply: Device.full_clean's message becomes the 400."""
        candidate = copy.copy(self.instance) if self.instance else Device()
        for key, value in attrs.items():
            setattr(candidate, key, value)
        candidate.full_clean()
        return attrs


class EngineSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    accelerators = serializers.ListField(child=serializers.ChoiceField(choices=Accelerator.CHOICES),
                                         help_text="A device runs the engine only with one of these accelerators.")
    precisions = serializers.ListField(child=serializers.CharField())
    why = serializers.CharField()

    def to_representation(self, engine):
        data = super().to_representation(engine)
        data["accelerators"] = sorted(data["accelerators"])
        return data


class ModelChoiceSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=60, help_text="Zoo key of a candidate, e.g. resnet50.")


class RecommendationSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    job = serializers.IntegerField(allow_null=True, help_text="The recommend job the ranking comes from.")
    ranking = serializers.JSONField(allow_null=True, help_text="Candidates best first: predicted latency and "
                                    "memory, expected accuracy, status and reason; top, closest, summary, "
                                    "confidence. Null until the recommend stage has run.")
    paper = PaperChoiceSerializer()
    comparison = serializers.CharField(help_text="Where the paper's rule and the ranking agree or disagree.")
    chosen = serializers.CharField(allow_null=True, help_text="The model the train stage will use.")
    chosen_by = serializers.ChoiceField(choices=["project", "ranking"], allow_null=True)
    why = serializers.CharField(help_text="Why the ranking's choice trains: its reason, or why a smaller candidate "
                                "trains instead when the dataset is too small for the top one. Empty when the "
                                "project picked its model.")


class DeviceRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    label = serializers.CharField()
    input_size = serializers.IntegerField()
    engine = serializers.CharField()
    precision = serializers.CharField()
    source = serializers.CharField()
    measured_ms = serializers.FloatField()
    predicted_ms = serializers.FloatField(help_text="By the model fitted to the device's other records of this "
                                          "engine and precision (leave one out).")
    error = serializers.FloatField(help_text="predicted / measured − 1.")
    backed_by = serializers.IntegerField(help_text="How many records the prediction was fitted to.")
    memory_mb = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()


class DeviceRecordsSerializer(serializers.Serializer):
    summary = serializers.JSONField()
    records = DeviceRecordSerializer(many=True)


class CalibrateSerializer(serializers.Serializer):
    quick = serializers.BooleanField(default=False, help_text="Three tiny models (seconds) instead of the spread.")


class ChoicesQuerySerializer(serializers.Serializer):
    task = serializers.ChoiceField(choices=Task.choices, default=Task.CLASSIFICATION)


class ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    problem = serializers.CharField(allow_null=True, help_text="Why it cannot be chosen; null when it can.")


class EngineChoiceSerializer(ChoiceSerializer):
    precisions = ChoiceSerializer(many=True, help_text="This engine's precisions for the task, each with its "
                                                       "problem.")


class DeviceChoicesSerializer(serializers.Serializer):
    task = serializers.CharField()
    engines = EngineChoiceSerializer(many=True, help_text="The device's engines, as the project forms offer them.")
