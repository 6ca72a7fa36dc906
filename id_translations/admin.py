import uuid

from django.contrib import admin

from .models import IdTranslation, parse_oracle_id


@admin.register(IdTranslation)
class IdTranslationAdmin(admin.ModelAdmin):
    list_display = ("flora_uuid", "oracle_id", "date_created", "created_by")
    readonly_fields = ("date_created", "created_by")
    search_fields = ("oracle_id",)  # shows the box; get_search_results does exact look-ups
    search_help_text = "Flora UUID or Oracle ID"
    show_full_result_count = False
    list_select_related = ("created_by",)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        oracle_id = parse_oracle_id(term)
        if oracle_id is not None:
            return queryset.filter(oracle_id=oracle_id), False
        try:
            return queryset.filter(flora_uuid=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
