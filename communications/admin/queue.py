"""The queue: the list of communications an operator works through, its filters, columns,
search, order and paginator."""

import datetime as dt
import operator
import re
import uuid as uuid_lib
from functools import reduce

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from id_translations.models import IdTranslation, parse_oracle_id

from ..models import OPEN_STATUSES, Communication, Direction, Kind
from .display import is_overdue, overdue_badge, short_datetime, short_uuid, status_badge
from .filters import DealerFilter, EmployeeFilter, LeadFilter

PHONE_SEARCH_RE = re.compile(r"^\+?[0-9]{7,15}$")

SHORT_KIND = {Kind.PLANNED: pgettext_lazy("kind, short", "plan"), Kind.ACTUAL: pgettext_lazy("kind, short", "fact")}
SHORT_DIRECTION = {
    Direction.INBOUND: pgettext_lazy("direction, short", "in"),
    Direction.OUTBOUND: pgettext_lazy("direction, short", "out"),
}


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
    OVERDUE, TODAY, OPEN = "overdue", "today", "open"

    def lookups(self, request, model_admin):
        return [(self.OVERDUE, _("Overdue")), (self.TODAY, _("Planned for today")), (self.OPEN, _("All open planned"))]

    def queryset(self, request, queryset):
        if self.value() == self.OPEN:
            return open_planned(queryset)
        if self.value() == self.OVERDUE:
            return open_planned(queryset).filter(date_planned_start__lt=timezone.now())
        if self.value() == self.TODAY:
            today = timezone.localdate()
            start = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
            end = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min))
            return open_planned(queryset).filter(date_planned_start__gte=start, date_planned_start__lt=end)
        return queryset


class CommunicationChangeList(ChangeList):
    """A queue is worked from the earliest due: with a queue filter the list is by planned start
    (the order of the index of open planned rows), and the column header says so."""

    QUEUE_ORDERING = ("date_planned_start", "uuid")

    def _queue(self) -> bool:
        return self.params.get(QueueFilter.parameter_name) in (QueueFilter.OVERDUE, QueueFilter.TODAY, QueueFilter.OPEN)

    def _get_default_ordering(self):
        return self.QUEUE_ORDERING if self._queue() else super()._get_default_ordering()

    def get_ordering(self, request, queryset):
        if self._queue() and ORDER_VAR not in self.params:
            return list(self.QUEUE_ORDERING)  # uuid last: already a total order
        return super().get_ordering(request, queryset)


class QueueMixin:
    """CommunicationAdmin's list: its columns, filters, search and order."""

    list_display = (
        "planned_display",
        "date_created_display",
        "method_display",
        "status_display",
        "attempts_display",
        "subject_display",
        "contact_display",
        "employee_display",
        "oracle_id_display",
    )
    list_display_links = ("subject_display",)
    list_filter = (
        QueueFilter,
        LeadFilter,
        DeletedFilter,
        "status",
        "method",
        "kind",
        "direction",
        "date_planned_start",
        "date_created",
        "date_finish",
        DealerFilter,
        EmployeeFilter,
    )
    list_select_related = ("method",)
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan millions of rows
    paginator = CappedCountPaginator
    ordering = ("-date_created",)
    search_fields = ("uuid",)  # shows the box; get_search_results does the real work
    search_help_text = _("UUID of the communication, client, employee or dealer; phone (+79161234567); Oracle ID")

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

    @admin.display(description=_("attempts"))
    def attempts_display(self, obj: Communication) -> SafeString:
        """How many times the client was tried; the last outcome on hover."""
        if not obj.attempts_count:
            return mark_safe("")
        return format_html(
            '<span class="attempts" title="{}">{}</span>', obj.get_last_attempt_outcome_display(), obj.attempts_count
        )

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
        leads = dict(LeadFilter(request, request.GET.copy(), Communication, self).lookup_choices)
        title = queue.get(request.GET.get(QueueFilter.parameter_name)) or leads.get(
            request.GET.get(LeadFilter.parameter_name), Communication._meta.verbose_name_plural
        )
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
