from django.contrib import admin

from .models import Architecture


@admin.register(Architecture)
class ArchitectureAdmin(admin.ModelAdmin):
    """Saved network versions, read-only: they are made in the editor (or through /api/architectures/)."""

    list_display = ("project", "version", "base_model", "input_size", "created_by", "created_at")
    list_filter = ("base_model",)
    search_fields = ("project__name", "note")
    readonly_fields = [f.name for f in Architecture._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
