from django.contrib import admin

from .models import CallLog


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    """Read-only: the log is what happened."""

    list_display = ("date_requested", "communication", "extension", "phone", "state", "hangup_cause", "duration_sec")
    list_filter = ("state", "date_requested")
    search_fields = ("=channel_id", "=phone", "=extension")
    list_select_related = ("communication",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
