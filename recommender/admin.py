from django import forms
from django.contrib import admin

from tango_common.engines import ENGINE_CHOICES

from .models import BenchmarkRecord, Device
from .services import benchmark_record_delete


class EngineFilter(admin.SimpleListFilter):
    title = "engine"
    parameter_name = "engine"

    def lookups(self, request, model_admin):
        return ENGINE_CHOICES

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # Filtered in Python: SQLite has no JSON "contains", and the catalog is a few dozen rows.
        ids = [pk for pk, engines in queryset.values_list("pk", "engines") if self.value() in (engines or [])]
        return queryset.filter(pk__in=ids)


class DeviceAdminForm(forms.ModelForm):
    # Checkboxes instead of raw JSON; the model's clean() still judges which engines the accelerator can run.
    engines = forms.MultipleChoiceField(
        choices=ENGINE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Only engines this device's accelerator can run are accepted.",
    )

    class Meta:
        model = Device
        fields = "__all__"


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceAdminForm
    list_display = ["name", "tier", "accelerator", "engine_list", "peak_fp32_gflops", "memory_mb",
                    "paper_detection_model", "paper_classification_model", "is_active"]
    list_filter = ["tier", "accelerator_kind", EngineFilter, "is_active"]
    search_fields = ["name", "vendor", "cpu_arch", "cpu_name", "accelerator_name", "notes"]
    fieldsets = [
        (None, {"fields": ["name", "tier", "vendor", "is_active", "is_host"]}),
        ("CPU", {"fields": ["cpu_arch", "cpu_name", "cpu_cores"]}),
        ("Accelerator", {"fields": ["accelerator_kind", "accelerator_name"]}),
        ("Performance and memory", {
            "fields": ["peak_fp32_gflops", "peak_fp16_gflops", "peak_int8_gops", "memory_bandwidth_gbps",
                       "memory_mb"],
        }),
        ("Software", {"fields": ["os", "engines", "default_latency_budget_ms"]}),
        ("TANGO paper, Table 1", {
            "fields": ["paper_detection_model", "paper_classification_model"],
            "description": "The models the paper's Table 1 gives this device; they stay with the device when it is "
                           "renamed. Blank for a device the paper does not list: the paper rule then borrows the "
                           "models of the paper device of its tier nearest in compute.",
        }),
        ("Sources", {"fields": ["notes"]}),
    ]

    @admin.display(description="accelerator", ordering="accelerator_kind")
    def accelerator(self, device):
        return device.accelerator_name or device.get_accelerator_kind_display()

    @admin.display(description="engines")
    def engine_list(self, device):
        return ", ".join(device.engine_labels())


@admin.register(BenchmarkRecord)
class BenchmarkRecordAdmin(admin.ModelAdmin):
    list_display = ["architecture", "device", "engine", "precision", "latency_ms", "memory_mb", "accuracy", "source",
                    "team", "created_at"]
    list_filter = ["source", "engine", "precision", "device"]
    search_fields = ["architecture__model_name", "device__name"]
    raw_id_fields = ["architecture", "project"]

    # Deleting goes through the service the API's delete calls: one rule, and the audit log keeps who removed what.
    def delete_model(self, request, obj):
        benchmark_record_delete(record=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for record in queryset:
            benchmark_record_delete(record=record, actor=request.user)
