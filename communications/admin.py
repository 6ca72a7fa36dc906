"""Operators' screens: a queue to work through, one communication's page, bulk actions.

Every write goes through communications.services, like the API's. The model's transition table
(`Communication.transitions()`, each transition's `custom`) decides which buttons and bulk actions
exist, their labels and the form each asks for. Higher apps (telephony) add their inlines, buttons
and URLs by registering a `CommunicationAdminExtension`; this module never imports them.
"""

import datetime as dt
import operator
import re
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django_fsm import Transition

from communications_project.errors import DomainError, NotFound, TransitionNotAllowed
from dicts.models import CommunicationMethod
from id_translations.models import IdTranslation, parse_oracle_id

from . import services
from .details import validate_details
from .forms import TransitionForm
from .models import (
    OPEN_STATUSES,
    Communication,
    CommunicationHistory,
    Direction,
    HistoryAction,
    Kind,
    Source,
    Status,
)

PHONE_SEARCH_RE = re.compile(r"^\+?[0-9]{7,15}$")
# One bulk action runs the service once per row; past this many rows it is a job for a script.
BULK_LIMIT = 500
# A refusal report names this many rows, then says how many more.
REPORT_ROWS = 10
# A work queue needs the width more than a menu of every model.
admin.site.enable_nav_sidebar = False

SHORT_KIND = {Kind.PLANNED: pgettext_lazy("kind, short", "plan"), Kind.ACTUAL: pgettext_lazy("kind, short", "fact")}
SHORT_DIRECTION = {
    Direction.INBOUND: pgettext_lazy("direction, short", "in"),
    Direction.OUTBOUND: pgettext_lazy("direction, short", "out"),
}


# What higher apps add to these screens.


class CommunicationAdminExtension:
    """A higher app's part of the communication's admin: inlines, a panel at the top of the
    change page (its buttons), and the URLs those buttons post to."""

    inlines: Sequence[type[admin.options.InlineModelAdmin]] = ()

    def get_urls(self, model_admin: "CommunicationAdmin") -> list[URLPattern]:
        return []

    def panel(self, request: HttpRequest, communication: Communication) -> str:
        """HTML shown beside the transition buttons; "" for nothing."""
        return ""


extensions: list[CommunicationAdminExtension] = []


def register_extension(extension: CommunicationAdminExtension) -> CommunicationAdminExtension:
    extensions.append(extension)
    return extension


def keep_filters(request: HttpRequest, url: str) -> str:
    """`url` carrying the list's filters the page was opened from, so "back" returns to the queue."""
    preserved = request.GET.get("_changelist_filters")
    return f"{url}?{urlencode({'_changelist_filters': preserved})}" if preserved else url


# Small pieces of HTML the list and the page share.


def status_badge(status: str) -> SafeString:
    return format_html('<span class="badge status-{}">{}</span>', status, Status(status).label)


def is_overdue(communication: Communication) -> bool:
    """The condition of the "overdue" filter, for one row already read."""
    return (
        communication.kind == Kind.PLANNED
        and communication.status in OPEN_STATUSES
        and not communication.is_deleted
        and communication.date_planned_start is not None
        and communication.date_planned_start < timezone.now()
    )


def overdue_badge() -> SafeString:
    return format_html('<span class="badge overdue" title="{}">!</span>', _("overdue"))


def short_uuid(value: uuid_lib.UUID | None) -> str:
    return str(value)[:8] if value else ""


def short_datetime(value: dt.datetime | None) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a list page stays fast on a table of millions.

    Past the cap the admin shows CAP rows' worth of pages; filters narrow the rest.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        # Only whether rows match: no ordering, no per-row columns (the Oracle ID's subquery).
        return self.object_list.order_by().values("pk")[: self.CAP].count()


# Filters


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


def open_planned(queryset: QuerySet[Communication]) -> QuerySet[Communication]:
    """Planned rows still to be done: exactly the condition of the index comm_open_planned_idx."""
    return queryset.filter(kind=Kind.PLANNED, status__in=OPEN_STATUSES, date_deleted__isnull=True)


class QueueFilter(admin.SimpleListFilter):
    """What needs an operator now. Both read the partial index of open planned rows."""

    title = _("needs attention")
    parameter_name = "queue"
    OVERDUE, TODAY = "overdue", "today"

    def lookups(self, request, model_admin):
        return [(self.OVERDUE, _("Overdue")), (self.TODAY, _("Planned for today"))]

    def queryset(self, request, queryset):
        if self.value() == self.OVERDUE:
            return open_planned(queryset).filter(date_planned_start__lt=timezone.now())
        if self.value() == self.TODAY:
            today = timezone.localdate()
            start = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
            end = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min))
            return open_planned(queryset).filter(date_planned_start__gte=start, date_planned_start__lt=end)
        return queryset


# Forms and inlines


class CommunicationAdminForm(forms.ModelForm):
    """Runs the service's own checks, so a refusal shows on the form instead of after saving."""

    class Meta:
        model = Communication
        fields = services.EDITABLE_FIELDS
        widgets = {
            **{
                name: forms.TextInput(attrs={"class": "vUUIDField", "size": 40})
                for name in ("client_uuid", "employee_uuid", "dealer_uuid")
            },
            "comment": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "result": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "details": forms.Textarea(attrs={"rows": 3, "cols": 80}),
        }

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
    """What happened to the communication: shown as a plain table, never edited here.

    `fields` are the columns, in order; a field of the model or a method of the inline (a method
    returns the cell's HTML). Adding a column is adding its name.
    """

    extra = 0
    can_delete = False
    template = "admin/edit_inline/read_only_tabular.html"
    select_related: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.select_related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HistoryFormatter:
    """Turns a history row's `changes` ({"field": [old, new]}) into what an operator reads."""

    def __init__(self):
        self._methods: dict[str, str] | None = None

    def method_name(self, code: str) -> str:
        if self._methods is None:  # one query per page, however many rows mention a method
            self._methods = dict(CommunicationMethod.objects.values_list("code", "name"))
        return self._methods.get(code, code)

    def label(self, name: str) -> str:
        try:
            return capfirst(Communication._meta.get_field(name.removesuffix("_id")).verbose_name)
        except FieldDoesNotExist:
            return name

    def value(self, name: str, value: Any) -> str:
        if value in (None, "", {}, []):
            return "—"
        if name == "method_id":
            return self.method_name(value)
        try:
            field = Communication._meta.get_field(name.removesuffix("_id"))
        except FieldDoesNotExist:
            return str(value)
        if field.choices:
            return str(dict(field.flatchoices).get(value, value))
        if name.startswith("date_") and isinstance(value, str) and (parsed := parse_datetime(value)):
            return short_datetime(parsed)
        if isinstance(value, dict):
            return ", ".join(f"{key}: {item}" for key, item in value.items())
        return str(value)

    def changes(self, entry: CommunicationHistory) -> SafeString:
        rows = [
            (self.label(name), self.value(name, old), self.value(name, new))
            for name, (old, new) in entry.changes.items()
            if name != "status"  # the event column says it
        ]
        if entry.action == HistoryAction.CREATE:
            return format_html_join("", '<div class="change"><b>{}</b>: {}</div>', ((k, new) for k, _o, new in rows))
        return format_html_join("", '<div class="change"><b>{}</b>: {} <span class="arrow">→</span> {}</div>', rows)


class CommunicationHistoryInline(ReadOnlyInline):
    """Newest first, in words: what happened, who did it, from where, what changed."""

    model = CommunicationHistory
    fields = ("date_display", "event", "actor", "source", "changes_display")
    ordering = ("-date", "-id")
    select_related = ("actor",)
    classes = ("history",)

    def get_formset(self, request, obj=None, **kwargs):
        self.formatter = HistoryFormatter()  # per request: the method names it caches
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("date"))
    def date_display(self, entry: CommunicationHistory) -> str:
        return short_datetime(entry.date)

    @admin.display(description=_("event"))
    def event(self, entry: CommunicationHistory) -> SafeString:
        if entry.action == HistoryAction.TRANSITION:
            return format_html(
                '{} <span class="arrow">→</span> {}', status_badge(entry.status_from), status_badge(entry.status_to)
            )
        if entry.action == HistoryAction.CREATE and entry.status_to:
            return format_html("{}: {}", entry.get_action_display(), status_badge(entry.status_to))
        return format_html("{}", entry.get_action_display())

    @admin.display(description=_("changes"))
    def changes_display(self, entry: CommunicationHistory) -> SafeString:
        return self.formatter.changes(entry)


# The communication's admin


class CommunicationChangeList(ChangeList):
    """A queue is worked from the earliest due: with a queue filter the list is by planned start
    (the order of the index of open planned rows), and the column header says so."""

    QUEUE_ORDERING = ("date_planned_start", "uuid")

    def _queue(self) -> bool:
        return self.params.get(QueueFilter.parameter_name) in (QueueFilter.OVERDUE, QueueFilter.TODAY)

    def _get_default_ordering(self):
        return self.QUEUE_ORDERING if self._queue() else super()._get_default_ordering()

    def get_ordering(self, request, queryset):
        if self._queue() and ORDER_VAR not in self.params:
            return list(self.QUEUE_ORDERING)  # uuid last: already a total order
        return super().get_ordering(request, queryset)


def transition_form_class(transition: Transition) -> type[TransitionForm] | None:
    form = transition.custom.get("form")
    return import_string(form) if form else None


def admin_transitions() -> dict[str, Transition]:
    return {name: t for name, t in Communication.transitions().items() if t.custom.get("admin")}


@admin.register(Communication)
class CommunicationAdmin(admin.ModelAdmin):
    form = CommunicationAdminForm
    list_display = (
        "planned_display",
        "date_created_display",
        "method_display",
        "status_display",
        "subject_display",
        "contact_display",
        "employee_display",
        "oracle_id_display",
    )
    list_display_links = ("subject_display",)
    list_filter = (
        QueueFilter,
        DeletedFilter,
        "status",
        "method",
        "kind",
        "direction",
        "date_planned_start",
        "date_created",
        "date_finish",
    )
    list_select_related = ("method",)
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan millions of rows
    paginator = CappedCountPaginator
    ordering = ("-date_created",)
    search_fields = ("uuid",)  # shows the box; get_search_results does the real work
    search_help_text = _("UUID of the communication, client, employee or dealer; phone (+79161234567); Oracle ID")
    actions = ["soft_delete_selected", "restore_selected"]
    fieldsets = (
        (None, {"fields": ("subject", "method", "kind", "direction", "status", "oracle_id_display")}),
        (_("Content"), {"fields": ("comment", "result", "details")}),
        (
            _("Dates"),
            {"fields": ("date_planned_start", "date_planned_finish", "date_start", "date_finish")},
        ),
        (_("Participants"), {"fields": ("client_uuid", "employee_uuid", "dealer_uuid")}),
        (_("Outcome"), {"fields": ("cancel_reason", "fail_reason")}),
        (
            _("Audit"),
            {
                "classes": ("collapse",),
                "fields": (
                    "uuid",
                    "version",
                    "date_created",
                    "created_by",
                    "date_updated",
                    "updated_by",
                    "date_deleted",
                ),
            },
        ),
    )
    # Set by the state machine or by the service, never typed in.
    always_read_only = (
        "uuid",
        "status",
        "version",
        "oracle_id_display",
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

    # The list

    @admin.display(description=_("created"), ordering="date_created")
    def date_created_display(self, obj: Communication) -> str:
        return short_datetime(obj.date_created)

    @admin.display(description=_("planned start"), ordering="date_planned_start")
    def planned_display(self, obj: Communication) -> SafeString:
        if obj.date_planned_start is None:
            return mark_safe("")
        if is_overdue(obj):
            when = short_datetime(obj.date_planned_start)
            return format_html('<span class="overdue-date">{}</span> {}', when, overdue_badge())
        return format_html("{}", short_datetime(obj.date_planned_start))

    @admin.display(description=_("method"))
    def method_display(self, obj: Communication) -> SafeString:
        """The method, and under it kind and direction in short ("plan, out")."""
        return format_html(
            '{}<div class="type" title="{}, {}">{}, {}</div>',
            obj.method,
            obj.get_kind_display(),
            obj.get_direction_display(),
            SHORT_KIND.get(obj.kind, obj.kind),
            SHORT_DIRECTION.get(obj.direction, obj.direction),
        )

    @admin.display(description=_("status"))
    def status_display(self, obj: Communication) -> SafeString:
        if obj.is_deleted:
            return format_html('{} <span class="badge deleted">{}</span>', status_badge(obj.status), _("deleted"))
        return status_badge(obj.status)

    @admin.display(description=_("subject"))
    def subject_display(self, obj: Communication) -> str:
        return obj.subject or gettext("(no subject)")

    @admin.display(description=_("contact"))
    def contact_display(self, obj: Communication) -> SafeString:
        details = obj.details or {}
        contact = details.get("phone") or details.get("email") or details.get("handle")
        if not contact:
            return mark_safe("")
        # A click lists everything with this client's number.
        if details.get("phone"):
            return format_html('<a href="?q={}" title="{}">{}</a>', contact, _("All with this number"), contact)
        return format_html('<span class="contact" title="{}">{}</span>', contact, contact)

    @admin.display(description=_("employee"))
    def employee_display(self, obj: Communication) -> SafeString:
        if not obj.employee_uuid:
            return mark_safe("")
        return format_html(
            '<a href="?q={}" title="{}">{}…</a>', obj.employee_uuid, obj.employee_uuid, short_uuid(obj.employee_uuid)
        )

    @admin.display(description=_("Oracle ID"))
    def oracle_id_display(self, obj: Communication) -> str:
        oracle_id = getattr(obj, "oracle_id", None)
        return "" if oracle_id is None else str(oracle_id)

    def changelist_view(self, request, extra_context=None):
        # "Выберите коммуникация для изменения" is Django's grammar; the queue says what it shows.
        queue = dict(QueueFilter(request, request.GET.copy(), Communication, self).lookup_choices)
        title = queue.get(request.GET.get(QueueFilter.parameter_name), Communication._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": capfirst(title), **(extra_context or {})})

    def get_queryset(self, request):
        oracle_id = IdTranslation.objects.filter(flora_uuid=OuterRef("uuid")).values("oracle_id")[:1]
        return Communication.objects.annotate(oracle_id=Subquery(oracle_id))

    def get_changelist(self, request, **kwargs):
        return CommunicationChangeList

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
        oracle_id = parse_oracle_id(term)
        if oracle_id is not None:
            # Looked up first: "uuid IN (subquery) OR phone = …" would read the whole table, while
            # "uuid = … OR phone = …" combines two index scans.
            flora_uuids = list(IdTranslation.objects.filter(oracle_id=oracle_id).values_list("flora_uuid", flat=True))
            if flora_uuids:
                conditions.append(Q(uuid__in=flora_uuids))
        compact = re.sub(r"[\s()\-]", "", term)
        if PHONE_SEARCH_RE.match(compact):
            conditions.append(Q(phone=compact if compact.startswith("+") else f"+{compact}"))
        if conditions:
            matching = reduce(operator.or_, conditions)
            return queryset.annotate(phone=KT("details__phone")).filter(matching), False
        # Anything else would need a scan of the whole table: find nothing, quickly.
        return queryset.none(), False

    # The change page

    def get_readonly_fields(self, request, obj=None):
        fields = set(super().get_readonly_fields(request, obj)) | set(self.always_read_only)
        if obj is not None:
            fields |= {"method", "kind", "direction"}
            if not obj.is_planned():
                fields |= set(services.PLANNED_DATE_FIELDS)
            if obj.is_final or obj.is_deleted:
                fields |= set(services.EDITABLE_FIELDS)
        return tuple(fields)

    def get_inlines(self, request, obj):
        return [*(inline for extension in extensions for inline in extension.inlines), CommunicationHistoryInline]

    def get_urls(self):
        opts = self.model._meta
        own = [
            path(
                "<path:object_id>/transition/<str:name>/",
                self.admin_site.admin_view(self.transition_view),
                name=f"{opts.app_label}_{opts.model_name}_transition",
            ),
            path(
                "<path:object_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name=f"{opts.app_label}_{opts.model_name}_restore",
            ),
        ]
        contributed = [url for extension in extensions for url in extension.get_urls(self)]
        return [*own, *contributed, *super().get_urls()]

    def transition_buttons(self, request: HttpRequest, obj: Communication) -> list[dict[str, Any]]:
        """The transitions allowed now, in the table's order, each with the form it asks for."""
        if obj.is_deleted or not self.has_change_permission(request, obj):
            return []
        available = {t.name for t in obj.get_available_status_transitions()}
        buttons = []
        for name, transition in admin_transitions().items():
            if name not in available:
                continue
            form_class = transition_form_class(transition)
            buttons.append(
                {
                    "name": name,
                    "label": transition.custom["label"],
                    "target": transition.target,
                    "form": form_class(communication=obj) if form_class else None,
                    "url": keep_filters(
                        request, reverse("admin:communications_communication_transition", args=[obj.pk, name])
                    ),
                }
            )
        return buttons

    def next_in_queue(self, request: HttpRequest, obj: Communication) -> str | None:
        """The change page of the row after this one in the queue it was opened from ("overdue",
        "planned for today"), for an operator working through it; None when opened otherwise.

        Only a queue on its own: with more filters or a search the list's order is the same but
        its rows are not, and a wrong "next" is worse than none.
        """
        params = QueryDict(request.GET.get("_changelist_filters", ""))
        queue = params.get(QueueFilter.parameter_name)
        if set(params) != {QueueFilter.parameter_name} or queue not in (QueueFilter.OVERDUE, QueueFilter.TODAY):
            return None
        if obj.date_planned_start is None:
            return None
        rows = QueueFilter(request, params.copy(), Communication, self).queryset(request, Communication.objects.all())
        after = Q(date_planned_start__gt=obj.date_planned_start) | Q(
            date_planned_start=obj.date_planned_start, uuid__gt=obj.uuid
        )
        following = rows.filter(after).order_by(*CommunicationChangeList.QUEUE_ORDERING).values_list("pk", flat=True)
        pk = following.first()
        if pk is None:
            return None
        return keep_filters(request, reverse("admin:communications_communication_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            context.update(
                title=obj.subject or gettext("Communication"),
                subtitle=str(obj.pk),
                communication=obj,
                status_badge=status_badge(obj.status),
                overdue=is_overdue(obj),
                transitions=self.transition_buttons(request, obj),
                next_url=self.next_in_queue(request, obj),
                panels=[html for extension in extensions if (html := extension.panel(request, obj))],
                restore_url=(
                    keep_filters(request, reverse("admin:communications_communication_restore", args=[obj.pk]))
                    if obj.is_deleted and self.has_delete_permission(request, obj)
                    else None
                ),
            )
        return super().change_view(request, object_id, form_url, context)

    def transition_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """One transition of one row: a POST from its button; the form again if it is not valid."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        transition = admin_transitions().get(name)
        if transition is None:
            raise Http404
        change_url = keep_filters(request, reverse("admin:communications_communication_change", args=[obj.pk]))
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form_class = transition_form_class(transition)
        form = form_class(request.POST, communication=obj) if form_class else None
        if form is not None and not form.is_valid():
            return TemplateResponse(
                request,
                "admin/communications/communication/transition_form.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "original": obj,
                    "title": transition.custom["label"],
                    "transition": {"name": name, "label": transition.custom["label"], "url": request.get_full_path()},
                    "form": form,
                    "status_badge": status_badge(obj.status),
                },
            )
        params = form.cleaned_data if form is not None else {}
        try:
            services.communication_transition(uuid=obj.pk, name=name, actor=request.user, source=Source.ADMIN, **params)
        except TransitionNotAllowed:
            self.message_user(request, self.refusal(name, Communication.objects.get(pk=obj.pk)), messages.ERROR)
        except (DomainError, ValidationError) as error:
            self.message_user(request, self.error_text(error), messages.ERROR)
        else:
            self.message_user(
                request,
                format_html(
                    _("{label}: done, the status is now {status}."),
                    label=transition.custom["label"],
                    status=status_badge(transition.target),
                ),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(change_url)

    def restore_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        if request.method == "POST":
            try:
                services.communication_restore(uuid=obj.pk, actor=request.user, source=Source.ADMIN)
            except NotFound:
                self.message_user(request, _("This communication is not deleted."), messages.WARNING)
            else:
                self.message_user(request, _("Restored."), messages.SUCCESS)
        return HttpResponseRedirect(
            keep_filters(request, reverse("admin:communications_communication_change", args=[obj.pk]))
        )

    @staticmethod
    def refusal(name: str, current: Communication) -> str:
        """The state machine's "no", in the operator's words."""
        return gettext("“%(action)s” is not possible: the communication is %(status)s now (%(kind)s).") % {
            "action": Communication.transitions()[name].custom["label"],
            "status": current.get_status_display().lower(),
            "kind": current.get_kind_display().lower(),
        }

    @staticmethod
    def error_text(error: Exception) -> str:
        if isinstance(error, ValidationError):
            return "; ".join(error.messages)
        if isinstance(error, NotFound):
            return gettext("The communication is deleted.")
        return str(getattr(error, "detail", error))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete; operators get the soft one
        if self.has_change_permission(request):
            for name, transition in admin_transitions().items():
                actions[f"transition_{name}"] = (
                    self._bulk_action(name),
                    f"transition_{name}",
                    format_lazy(_("{label}: selected communications"), label=transition.custom["label"]),
                )
        return actions

    @staticmethod
    def _bulk_action(name: str) -> Callable:
        def action(model_admin: "CommunicationAdmin", request: HttpRequest, queryset: QuerySet):
            return model_admin.bulk_transition(request, queryset, name)

        return action

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

    # Bulk actions: the service once per row, each row all or nothing, a report of what happened.

    def _selected_rows(self, request: HttpRequest, queryset: QuerySet) -> list[Communication] | None:
        selected = queryset.select_related(None).order_by("-date_created", "uuid")
        rows = list(selected.only("uuid", "subject", "status", "kind", "date_deleted")[: BULK_LIMIT + 1])
        if len(rows) > BULK_LIMIT:
            self.message_user(
                request,
                gettext("Select at most %(limit)d communications for one action.") % {"limit": BULK_LIMIT},
                messages.ERROR,
            )
            return None
        return rows

    def bulk_transition(self, request: HttpRequest, queryset: QuerySet, name: str) -> HttpResponse | None:
        transition = admin_transitions()[name]
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return None
        params: dict[str, Any] = {}
        form_class = transition_form_class(transition)
        if form_class is not None:
            form = form_class(request.POST if "apply" in request.POST else None)
            if not form.is_bound or not form.is_valid():
                return TemplateResponse(
                    request,
                    "admin/communications/communication/bulk_transition.html",
                    {
                        **self.admin_site.each_context(request),
                        "opts": self.opts,
                        "title": transition.custom["label"],
                        "label": transition.custom["label"],
                        "action": f"transition_{name}",
                        "form": form,
                        "rows": rows,
                        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                        "media": self.media + form.media,
                    },
                )
            params = form.cleaned_data

        def run(uuid):
            services.communication_transition(uuid=uuid, name=name, actor=request.user, source=Source.ADMIN, **params)

        label = transition.custom["label"]
        self._run_per_row(request, rows, label, run, refused_because=lambda row: self.refusal(name, row))
        return None

    def _run_per_row(
        self,
        request: HttpRequest,
        rows: Iterable[Communication],
        label: str,
        run: Callable[[uuid_lib.UUID], Any],
        refused_because: Callable[[Communication], str],
    ) -> None:
        changed, refused = 0, []
        for row in rows:
            try:
                run(row.pk)
            except TransitionNotAllowed:
                refused.append((row, refused_because(row)))
            except (DomainError, ValidationError) as error:
                refused.append((row, self.error_text(error)))
            else:
                changed += 1
        self.message_user(
            request,
            gettext("%(label)s: changed %(changed)d of %(total)d.")
            % {"label": label, "changed": changed, "total": changed + len(refused)},
            messages.SUCCESS if changed else messages.WARNING,
        )
        if refused:
            items = format_html_join(
                "",
                '<li><a href="{}">{}</a>: {}</li>',
                (
                    (
                        reverse("admin:communications_communication_change", args=[row.pk]),
                        row.subject or short_uuid(row.pk),
                        reason,
                    )
                    for row, reason in refused[:REPORT_ROWS]
                ),
            )
            more = len(refused) - REPORT_ROWS
            self.message_user(
                request,
                format_html(
                    '{}<ul class="refusals">{}</ul>{}',
                    gettext("Refused: %(count)d.") % {"count": len(refused)},
                    items,
                    gettext("And %(count)d more.") % {"count": more} if more > 0 else "",
                ),
                messages.ERROR,
            )

    @admin.action(description=_("Delete selected communications (restorable)"), permissions=["delete"])
    def soft_delete_selected(self, request, queryset):
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return

        def run(uuid):
            services.communication_delete(uuid=uuid, actor=request.user, source=Source.ADMIN)

        self._run_per_row(request, rows, gettext("Deletion"), run, refused_because=lambda row: "")

    @admin.action(description=_("Restore selected deleted communications"), permissions=["delete"])
    def restore_selected(self, request, queryset):
        rows = self._selected_rows(request, queryset)
        if rows is None:
            return

        def run(uuid):
            try:
                services.communication_restore(uuid=uuid, actor=request.user, source=Source.ADMIN)
            except NotFound:
                raise DomainError(gettext("It is not deleted."))

        self._run_per_row(request, rows, gettext("Restoration"), run, refused_because=lambda row: "")
