"""Staff read the audit log and can revoke any API token here (never see a key: only its hash is kept)."""

from django.contrib import admin

from .models import ApiToken, AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "target_type", "target_label", "team", "detail"]
    list_filter = ["action", "target_type", "team"]
    search_fields = ["actor_name", "target_label", "detail"]
    date_hierarchy = "created_at"

    # A log that can be edited proves nothing.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "name", "prefix", "key_sha256", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False  # a key is shown once to its owner: create tokens on the token page or the API
