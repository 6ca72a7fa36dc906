"""List filters the supervisors' dashboard links to: by dealership, by employee, leads by contact.

Each takes its value from the link (a UUID, `none`), and shows it in the sidebar while it filters:
a filter Django does not show is not applied, and a link must never list more than it says.
The dealership and employee filters offer no list of their own (that would be a query per page).
"""

import uuid as uuid_lib

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from .. import reports
from .display import short_uuid

NONE = "none"


class UUIDFilter(admin.SimpleListFilter):
    """`?<parameter>=<uuid>` (or `none`: not set) on `field`; lists `choices()` plus the chosen value."""

    field = ""

    def choices_offered(self) -> list[uuid_lib.UUID]:
        return []

    def lookups(self, request, model_admin):
        offered = [(str(value), short_uuid(value)) for value in self.choices_offered()]
        chosen = self.value()
        if chosen and chosen not in dict(offered):
            offered.append((chosen, _("(not set)") if chosen == NONE else chosen[:8]))
        return offered

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if value == NONE:
            return queryset.filter(**{f"{self.field}__isnull": True})
        try:
            return queryset.filter(**{self.field: uuid_lib.UUID(value)})
        except ValueError as error:
            raise IncorrectLookupParameters(error)


class DealerFilter(UUIDFilter):
    """Shown while it filters (the dashboard's links); the dashboard is where a dealership is chosen."""

    title = _("dealership")
    parameter_name = "dealer"
    field = "dealer_uuid"


class AttemptDealerFilter(DealerFilter):
    field = "communication__dealer_uuid"


class EmployeeFilter(UUIDFilter):
    """Shown only while it filters: there are too many employees for a sidebar."""

    title = _("employee")
    parameter_name = "employee"
    field = "employee_uuid"


class LeadFilter(admin.SimpleListFilter):
    """Leads (inbound site and app requests) by their first contact: the report's own rule."""

    title = _("leads")
    parameter_name = "lead"
    ALL, CONTACTED, WAITING = "all", "contacted", "waiting"

    def lookups(self, request, model_admin):
        return [
            (self.ALL, _("All leads")),
            (self.CONTACTED, _("Contacted")),
            (self.WAITING, _("Waiting for first contact")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        leads = reports.as_leads(queryset)
        if value == self.CONTACTED:
            return reports.contacted(leads)
        if value == self.WAITING:
            return reports.waiting(leads)
        return leads
