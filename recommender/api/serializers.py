import copy

from rest_framework import serializers

from recommender.models import Device
from tango_common.engines import Accelerator


class DeviceSerializer(serializers.ModelSerializer):
    engines = serializers.ListField(child=serializers.CharField(max_length=20),
                                    help_text="Engine keys the device runs (see /api/engines/).")

    class Meta:
        model = Device
        fields = "__all__"

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
