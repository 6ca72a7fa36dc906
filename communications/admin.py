"""Operators' screens. Every write goes through communications.services, like the API's."""

import operator
import re
import uuid as uuid_lib
from functools import reduce

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django_fsm.admin import FSMAdminMixin

from communications_project.errors import DomainError
from id_translations.models import IdTranslation
from telephony.models import CallLog

from . import services
from .details import validate_details
from .models import Communication, CommunicationHistory, Source

PHONE_SEARCH_RE = re.compile(r"^\+?[0-9]{7,15}$")


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a list page stays fast on a table of millions.

    Past the cap the admin shows CAP rows' worth of pages; filters narrow the rest.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP].count()


class DeletedFilter(admin.SimpleListFilter):
    title = _("deletion")
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("yes", _("Deleted")), ("all", _("All"))]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Not deleted"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.deleted()
        if self.value() == "all":
            return queryset
        return queryset.alive()


class CommunicationAdminForm(forms.ModelForm):
    """Runs the service's own checks, so a refusal shows on the form instead of after saving."""

    class Meta:
        model = Communication
        fields = services.EDITABLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if instance.is_final and self.changed_data:
            raise ValidationError(_("A final communication cannot be changed."), code="final")
        if "details" in self.changed_data and "details" in cleaned:
            try:
                cleaned["details"] = validate_details(instance.method_id, cleaned["details"])
            except ValidationError as error:
                self.add_error("details", [f"{key}: {' '.join(msgs)}" for key, msgs in error.message_dict.items()])
        if instance.is_planned() and "date_planned_start" in cleaned:
            services.check_planned_dates(
                instance.kind, cleaned.get("date_planned_start"), cleaned.get("date_planned_finish")
            )
        return cleaned


class ReadOnlyInline(admin.TabularInline):
    """What happened to the communication: shown, never edited here."""

    extra = 0
    can_delete = False
    select_related: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.select_related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CommunicationHistoryInline(ReadOnlyInline):
    model = CommunicationHistory
    fields = ("date", "action", "transition", "status_from", "status_to", "source", "actor", "changes")
    ordering = ("-date", "-id")
    select_related = ("actor",)


class CallLogInline(ReadOnlyInline):
    model = CallLog
    fields = ("date_requested", "requested_by", "extension", "phone", "state", "hangup_cause", "duration_sec", "error")
    select_related = ("requested_by",)


@admin.register(Communication)
class CommunicationAdmin(FSMAdminMixin, admin.ModelAdmin):
    form = CommunicationAdminForm
    fsm_fields = ["status"]
    list_display = (
        "uuid",
        "method",
        "kind",
        "direction",
        "status",
        "client_uuid",
        "employee_uuid",
        "date_planned_start",
        "date_created",
    )
    list_filter = (
        DeletedFilter,
        "method",
        "status",
        "kind",
        "direction",
        "date_created",
        "date_planned_start",
        "date_finish",
    )
    list_select_related = ("method",)
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-date_created",)
    search_fields = ("uuid",)  # shows the box; get_search_results does the real work
    search_help_text = _("UUID of the communication, client, employee or dealer; phone (+79161234567); Oracle ID")
    inlines = [CommunicationHistoryInline, CallLogInline]
    actions = ["soft_delete_selected", "restore_selected"]
    fieldsets = (
        (None, {"fields": ("uuid", "method", "kind", "direction", "status", "version")}),
        (_("Participants"), {"fields": ("client_uuid", "employee_uuid", "dealer_uuid")}),
        (_("Content"), {"fields": ("subject", "comment", "result", "details")}),
        (
            _("Dates"),
            {"fields": ("date_planned_start", "date_planned_finish", "date_start", "date_finish")},
        ),
        (_("Outcome"), {"fields": ("cancel_reason", "fail_reason")}),
        (
            _("Audit"),
            {"fields": ("date_created", "created_by", "date_updated", "updated_by", "date_deleted")},
        ),
    )
    # Set by the state machine or by the service, never typed in.
    always_read_only = (
        "uuid",
        "status",
        "version",
        "date_start",
        "date_finish",
        "cancel_reason",
        "fail_reason",
        "date_created",
        "created_by",
        "date_updated",
        "updated_by",
        "date_deleted",
    )

    def get_readonly_fields(self, request, obj=None):
        fields = set(super().get_readonly_fields(request, obj)) | set(self.always_read_only)
        if obj is not None:
            fields |= {"method", "kind", "direction"}
            if not obj.is_planned():
                fields |= set(services.PLANNED_DATE_FIELDS)
            if obj.is_final:
                fields |= set(services.EDITABLE_FIELDS)
        return tuple(fields)

    def get_queryset(self, request):
        return Communication.objects.all()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = uuid_lib.UUID(term)
        except ValueError:
            pass
        else:
            return (
                queryset.filter(Q(uuid=value) | Q(client_uuid=value) | Q(employee_uuid=value) | Q(dealer_uuid=value)),
                False,
            )
        conditions = []
        if term.isdigit() and len(term) <= 19:  # an Oracle ID
            conditions.append(Q(uuid__in=IdTranslation.objects.filter(oracle_id=int(term)).values("flora_uuid")))
        compact = re.sub(r"[\s()\-]", "", term)
        if PHONE_SEARCH_RE.match(compact):
            conditions.append(Q(phone=compact if compact.startswith("+") else f"+{compact}"))
        if conditions:
            matching = reduce(operator.or_, conditions)
            return queryset.annotate(phone=KT("details__phone")).filter(matching), False
        # Anything else would need a scan of the whole table: find nothing, quickly.
        return queryset.none(), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete; operators get the soft one
        return actions

    def has_add_permission(self, request):
        # Communications are born in the CRM (API), telephony or an import; operators find and
        # fix them here. Creating one by hand would skip the caller's own checks.
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in services.EDITABLE_FIELDS}
        if data:
            services.communication_update(uuid=obj.pk, actor=request.user, source=Source.ADMIN, data=data)

    def delete_model(self, request, obj):
        services.communication_delete(uuid=obj.pk, actor=request.user, source=Source.ADMIN)

    @admin.action(description=_("Delete selected communications (restorable)"), permissions=["delete"])
    def soft_delete_selected(self, request, queryset):
        uuids = list(queryset.alive().values_list("uuid", flat=True))
        for uuid in uuids:
            services.communication_delete(uuid=uuid, actor=request.user, source=Source.ADMIN)
        self.message_user(request, _("Deleted: %d") % len(uuids), messages.SUCCESS)

    @admin.action(description=_("Restore selected deleted communications"), permissions=["delete"])
    def restore_selected(self, request, queryset):
        uuids = list(queryset.deleted().values_list("uuid", flat=True))
        for uuid in uuids:
            services.communication_restore(uuid=uuid, actor=request.user, source=Source.ADMIN)
        self.message_user(request, _("Restored: %d") % len(uuids), messages.SUCCESS)

    @staticmethod
    def get_fsm_block_label(fsm_field_name: str) -> str:
        return _("Change status")

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None) -> bool:
        """Run the transition through the service (row lock, history), not on this instance."""
        if not self.has_change_permission(request, obj):
            self.message_user(request, _("You may not change this communication."), messages.ERROR)
            return False
        try:
            services.communication_transition(
                uuid=obj.pk, name=transition_name, actor=request.user, source=Source.ADMIN, **(kwargs or {})
            )
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return False
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return False
        label = self.get_fsm_label(Communication.transitions()[transition_name])
        self.message_user(request, _("Done: %s") % label, messages.SUCCESS)
        return True
