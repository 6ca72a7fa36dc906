from django.contrib import admin

from .models import CommunicationMethod


@admin.register(CommunicationMethod)
class CommunicationMethodAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_active", "sort_order")
    list_editable = ("is_active", "sort_order")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        # The code is the key other systems store; it never changes once made.
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # switch a method off instead; communications refer to it
