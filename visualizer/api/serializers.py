from rest_framework import serializers

from projects.access import projects_for
from projects.models import Project

from ..models import Architecture


class ArchitectureSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default="")
    chosen = serializers.SerializerMethodField(help_text="Whether the train stage trains this version.")

    class Meta:
        model = Architecture
        fields = ["id", "project", "version", "base_model", "input_size", "num_classes", "edits", "note", "summary",
                  "graph", "chosen", "created_by", "created_at"]
        read_only_fields = fields

    def get_chosen(self, obj) -> bool:
        return obj.project.options.get("architecture") == obj.pk


class EditsSerializer(serializers.Serializer):
    """A network: the project, the zoo model it starts from and the edits, in order."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.none())
    base_model = serializers.CharField(required=False, allow_blank=True, help_text=(
        "The zoo model to start from; default: the model the project trains (picked or recommended)."))
    edits = serializers.ListField(child=serializers.JSONField(), required=False, default=list, max_length=500,
                                  help_text=(
        "Edits applied in order: set, resize, insert, remove, replace, rewire, group, ungroup "
        "(see visualizer.graph.edits)."))
    note = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:  # the schema generator builds one without a request
            self.fields["project"].queryset = projects_for(user)


class PreviewSerializer(serializers.Serializer):
    base_model = serializers.CharField()
    graph = serializers.JSONField(help_text="Nodes (op, params, shape, param_count, flops, inputs, block) and blocks.")
    errors = serializers.ListField(child=serializers.DictField(), help_text="Where the network does not fit.")
    flags = serializers.ListField(child=serializers.DictField(), help_text="Layers the engine cannot run or runs "
                                                                           "slowly.")
    costs = serializers.DictField(help_text="Parameters, FLOPs, predicted latency and memory, budget.")
    base_costs = serializers.DictField(help_text="The same for the unedited model.")
    changes = serializers.ListField(child=serializers.CharField())
    palette = serializers.ListField(child=serializers.CharField())


class ChooseSerializer(serializers.Serializer):
    chosen = serializers.BooleanField(default=True, help_text="false: train the unedited zoo model again.")
