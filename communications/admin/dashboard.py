"""The supervisors' dashboard (docs/ADMIN.md): for a dealership and a day, the leads waiting for a
first contact, that day's lead response and the last 30 days' as a chart, each employee's open and
overdue planned communications, and the day's attempts by outcome.

Every number comes from the same selectors as `GET /v3/reports/lead-response` (communications.reports)
and links to the list it counts, filtered by the same rule. Charts are SVG drawn on the server.
Needs `communications.view_reports`.
"""

import datetime as dt
import uuid as uuid_lib
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from communications_project.svg import Bar, bar_chart, hbar_chart
from dicts import selectors as dict_selectors

from .. import reports
from ..models import AttemptOutcome
from .display import short_uuid
from .filters import NONE, LeadFilter
from .queue import QueueFilter

PERMISSION = "communications.view_reports"
WINDOW_DAYS = 30


class DashboardForm(forms.Form):
    dealer = forms.ChoiceField(label=_("dealership"), required=False)
    day = forms.DateField(label=_("day"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, dealers: list[uuid_lib.UUID], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dealer"].choices = [("", gettext("All dealerships")), *((str(d), str(d)) for d in dealers)]


def age_text(minutes: int) -> str:
    """45 min; 3 h 05 min; 2 d 4 h."""
    if minutes < 60:
        return gettext("%(m)d min") % {"m": minutes}
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return gettext("%(h)d h %(m)02d min") % {"h": hours, "m": rest}
    days, hours = divmod(hours, 24)
    return gettext("%(d)d d %(h)d h") % {"d": days, "h": hours}


def bounds(first: dt.date, last: dt.date) -> dict[str, str]:
    """The admin's date filter for [first 00:00, the day after last 00:00), Moscow time."""
    start, end = reports.day_bounds(first, last)
    return {"__gte": str(timezone.localtime(start)), "__lt": str(timezone.localtime(end))}


class Links:
    """The filtered lists the dashboard's numbers count."""

    def __init__(self, dealer: str):
        self.dealer = {"dealer": dealer} if dealer else {}
        self.communications = reverse("admin:communications_communication_changelist")
        self.attempts = reverse("admin:communications_attempt_changelist")

    def leads(self, which: str, first: dt.date, last: dt.date) -> str:
        dates = {f"date_created{key}": value for key, value in bounds(first, last).items()}
        return f"{self.communications}?{urlencode({LeadFilter.parameter_name: which, **self.dealer, **dates})}"

    def planned(self, queue: str, employee: uuid_lib.UUID | None) -> str:
        params = {QueueFilter.parameter_name: queue, **self.dealer, "employee": str(employee) if employee else NONE}
        return f"{self.communications}?{urlencode(params)}"

    def attempts_of(self, outcome: str, day: dt.date) -> str:
        dates = {f"date{key}": value for key, value in bounds(day, day).items()}
        return f"{self.attempts}?{urlencode({'outcome__exact': outcome, **self.dealer, **dates})}"

    def communication(self, uuid: uuid_lib.UUID) -> str:
        return reverse("admin:communications_communication_change", args=[uuid])


def response_chart(report: dict, links: Links) -> str:
    sla = report["sla_minutes"]
    bars = []
    for index, group in enumerate(report["groups"]):
        day = group["key"]
        last = index == len(report["groups"]) - 1
        share = group["within_sla_share"]
        tooltip = gettext(
            "%(day)s: %(leads)d leads, %(contacted)d contacted, median %(median)s min, within SLA %(share)s"
        ) % {
            "day": formats.date_format(day, "SHORT_DATE_FORMAT"),
            "leads": group["leads"],
            "contacted": group["contacted"],
            "median": "—" if group["median_minutes"] is None else formats.number_format(group["median_minutes"], 1),
            "share": "—" if share is None else f"{round(share * 100)}%",
        }
        bars.append(
            Bar(
                label=formats.date_format(day, "d.m") if index % 5 == 0 or last else "",
                value=group["median_minutes"],
                href=links.leads(LeadFilter.ALL, day, day) if group["leads"] else None,
                tooltip=tooltip,
                alert=group["median_minutes"] is not None and group["median_minutes"] > sla,
            )
        )
    return bar_chart(
        bars,
        title=gettext("Median minutes to first contact, by day"),
        unit=gettext("min"),
        threshold=sla,
        threshold_label=gettext("SLA %(minutes)d min") % {"minutes": sla},
        css_class="chart response-chart",
    )


def attempts_chart(counts: dict[str, int], day: dt.date, links: Links) -> str:
    rows = [(str(AttemptOutcome(o).label), counts[o], links.attempts_of(o, day)) for o in AttemptOutcome.values]
    colors = ("#16a34a", "#f59e0b", "#ef4444", "#6b7280", "#2563eb")  # reached, no answer, busy, wrong, message
    return hbar_chart(rows, title=gettext("Attempts by outcome"), css_class="chart attempts-chart", colors=colors)


class DashboardMixin:
    """CommunicationAdmin's dashboard page (its URL sits among the model's: .../communication/dashboard/)."""

    def get_urls(self):
        own = [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="communications_dashboard"),
        ]
        return [*own, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        dealers = reports.dealers()
        form = DashboardForm(request.GET or None, dealers=dealers)
        valid = form.is_valid() if request.GET else False
        dealer = form.cleaned_data.get("dealer", "") if valid else ""
        day = (form.cleaned_data.get("day") if valid else None) or timezone.localdate()
        if not request.GET:
            form = DashboardForm(initial={"day": day}, dealers=dealers)
        chosen = [uuid_lib.UUID(dealer)] if dealer else []
        first = day - dt.timedelta(days=WINDOW_DAYS - 1)
        report = reports.lead_response(date_from=first, date_to=day, group_by="day", dealer_uuids=chosen)
        links = Links(dealer)
        today = report["groups"][-1]
        employees = [
            {
                **row,
                "name": short_uuid(row["employee_uuid"]) if row["employee_uuid"] else gettext("(not assigned)"),
                "open_url": links.planned(QueueFilter.OPEN, row["employee_uuid"]),
                "overdue_url": links.planned(QueueFilter.OVERDUE, row["employee_uuid"]),
            }
            for row in reports.open_planned_by_employee(dealer_uuids=chosen)
        ]
        attempts = reports.attempts_by_outcome(day=day, dealer_uuids=chosen)
        method_names = {method["code"]: method["name"] for method in dict_selectors.methods()}
        waiting = [
            {
                **lead,
                "method_name": method_names.get(lead["method"], lead["method"]),
                "age": age_text(lead["age_minutes"]),
                "url": links.communication(lead["uuid"]),
                "employee": short_uuid(lead["employee_uuid"]) if lead["employee_uuid"] else "",
            }
            for lead in report["waiting"]["results"]
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Supervisors' dashboard"),
            "form": form,
            "dealer": dealer,
            "day": day,
            "first": first,
            "report": report,
            "today": today,
            "totals": report["totals"],
            "links": {
                "waiting": links.leads(LeadFilter.WAITING, first, day),
                "day_leads": links.leads(LeadFilter.ALL, day, day),
                "day_contacted": links.leads(LeadFilter.CONTACTED, day, day),
                "day_waiting": links.leads(LeadFilter.WAITING, day, day),
                "window_leads": links.leads(LeadFilter.ALL, first, day),
                "window_contacted": links.leads(LeadFilter.CONTACTED, first, day),
            },
            "waiting": waiting,
            "employees": employees,
            "attempts": [
                (outcome, AttemptOutcome(outcome).label, count, links.attempts_of(outcome, day))
                for outcome, count in attempts.items()
            ],
            "attempts_total": sum(attempts.values()),
            # Our own SVG: every text in it escaped.
            "response_chart": mark_safe(response_chart(report, links)),
            "attempts_chart": mark_safe(attempts_chart(attempts, day, links)),
        }
        return TemplateResponse(request, "admin/communications/dashboard.html", context)
