"""Reads for supervisors: lead response (docs/REPORTS.md) and the dashboard's counts.

A **lead** is an alive inbound `site_request` or `mobile_app_request`. Its **first contact** is the
earliest of its first attempt and the creation of an outbound communication (any method, not
cancelled, not deleted) to the same client at or after the lead came in. Response time runs from
the lead's `date_created` to that contact, in minutes (working minutes when
LEAD_RESPONSE_WORKING_HOURS is set).

One query reads the leads of the range with their first contact, two index probes per lead in
the same statement (its first attempt on attempt_comm_date_idx, the client's first outbound
communication since the lead on comm_outbound_client_idx, both from the index alone), and sends
back a few numbers per lead. The statistics are computed from those rows here, the same on
PostgreSQL and SQLite (exact percentiles, working hours). A second query reads what the list of
waiting leads shows, for the few it lists.
"""

import datetime as dt
import math
import uuid as uuid_lib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import (
    LEAD_CONDITION,
    OPEN_STATUSES,
    Attempt,
    AttemptOutcome,
    Communication,
    Direction,
    Kind,
    Status,
)

GROUPS = ("day", "dealer", "employee")
MAX_DAYS = 366
WAITING_SHOWN = 200


class Earliest(Func):
    """The earliest of its arguments that is not null (PostgreSQL's LEAST skips nulls; SQLite's
    MIN of several values does not, so there each null is replaced by the other value)."""

    function = "LEAST"
    output_field = DateTimeField()

    def as_sqlite(self, compiler, connection, **extra_context):
        first, second = self.get_source_expressions()
        return Func(
            Coalesce(first, second), Coalesce(second, first), function="MIN", output_field=self.output_field
        ).as_sql(compiler, connection, **extra_context)


class Epoch(Func):
    """Seconds since 1970 as a float: a lead's times cost a float each to read, not a timestamp."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::double precision", **extra_context
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra_context
        )


def first_contact() -> Earliest:
    """The first contact of the lead in the outer query (see the module's docstring)."""
    first_attempt = Attempt.objects.filter(communication=OuterRef("uuid")).order_by("date").values("date")[:1]
    first_outbound = (
        Communication.objects.alive()
        .filter(
            client_uuid=OuterRef("client_uuid"),
            direction=Direction.OUTBOUND,
            date_created__gte=OuterRef("date_created"),
        )
        .exclude(status=Status.CANCELLED)
        .order_by("date_created")
        .values("date_created")[:1]
    )
    return Earliest(Subquery(first_attempt), Subquery(first_outbound))


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start of date_from, start of the day after date_to) in the service's time zone."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min), zone)
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min), zone)
    return start, end


def as_leads(queryset: QuerySet[Communication]) -> QuerySet[Communication]:
    """The leads among `queryset` (alive inbound site and app requests), each with `first_contact`
    (None: not yet). The admin's lead filter and the report both read leads through here."""
    return queryset.filter(LEAD_CONDITION).annotate(first_contact=first_contact())


def leads(
    *, start: dt.datetime, end: dt.datetime, dealer_uuids: Sequence[uuid_lib.UUID] = ()
) -> QuerySet[Communication]:
    """Leads that came in within [start, end), each with `first_contact` (None: not yet)."""
    queryset = Communication.objects.filter(date_created__gte=start, date_created__lt=end)
    if dealer_uuids:
        queryset = queryset.filter(dealer_uuid__in=list(dealer_uuids))
    return as_leads(queryset)


def waiting(queryset: QuerySet[Communication]) -> QuerySet[Communication]:
    """Of `leads(...)`, those still waiting for their first contact: none yet, and still open."""
    return queryset.filter(first_contact__isnull=True, status__in=OPEN_STATUSES)


def contacted(queryset: QuerySet[Communication]) -> QuerySet[Communication]:
    return queryset.filter(first_contact__isnull=False)


# Working hours


def working_hours() -> tuple[dt.time, dt.time] | None:
    return settings.LEAD_RESPONSE_WORKING_HOURS


def elapsed_minutes(start: dt.datetime, end: dt.datetime, hours: tuple[dt.time, dt.time] | None = None) -> float:
    """Minutes from `start` to `end`; with working hours (every day, in the service's time zone),
    only the minutes inside them count: a lead at 23:00 answered at 09:05 took five minutes."""
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds() / 60
    zone = timezone.get_default_timezone()
    opens, closes = hours
    day, last = timezone.localtime(start, zone).date(), timezone.localtime(end, zone).date()
    seconds = 0.0
    while day <= last:
        lo = max(start, timezone.make_aware(dt.datetime.combine(day, opens), zone))
        hi = min(end, timezone.make_aware(dt.datetime.combine(day, closes), zone))
        if hi > lo:
            seconds += (hi - lo).total_seconds()
        day += dt.timedelta(days=1)
    return seconds / 60


# Statistics


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont); `values` sorted."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass
class Stats:
    leads: int = 0
    contacted: int = 0
    within_sla: int = 0
    pending: int = 0  # not contacted yet, and not yet past the SLA
    waiting: int = 0  # not contacted, still open
    minutes: list[float] = field(default_factory=list)

    def add(self, response: float | None, *, age: float, sla: int, is_open: bool) -> None:
        self.leads += 1
        if response is not None:
            self.contacted += 1
            self.minutes.append(response)
            self.within_sla += response <= sla
        else:
            self.pending += age <= sla
            self.waiting += is_open

    def as_dict(self) -> dict:
        values = sorted(self.minutes)
        decided = self.leads - self.pending
        return {
            "leads": self.leads,
            "contacted": self.contacted,
            "not_contacted": self.leads - self.contacted,
            "waiting": self.waiting,
            "within_sla": self.within_sla,
            "missed_sla": decided - self.within_sla,
            "within_sla_share": round(self.within_sla / decided, 4) if decided else None,
            "median_minutes": _round(percentile(values, 0.5)),
            "p90_minutes": _round(percentile(values, 0.9)),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# The group's column per grouping (a day is the lead's own date, from its time).
GROUP_COLUMNS = {"day": None, "dealer": "dealer_uuid", "employee": "employee_uuid"}
# What the waiting leads' list shows, read for at most WAITING_SHOWN of them.
WAITING_COLUMNS = (
    "uuid",
    "method_id",
    "status",
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "date_created",
)


def report_rows(queryset: QuerySet[Communication], group_by: str = "day") -> QuerySet[tuple]:
    """Per lead of `leads(...)`, as little as the statistics need: (uuid, came in, first contact or
    None, both as epoch seconds; still open; the group's column). The first contact's subqueries
    run once, in their column."""
    column = GROUP_COLUMNS[group_by]
    return queryset.annotate(
        came_in=Epoch("date_created"),
        contacted_at=Epoch("first_contact"),
        is_open=ExpressionWrapper(Q(status__in=OPEN_STATUSES), output_field=BooleanField()),
    ).values_list("uuid", "came_in", "contacted_at", "is_open", *([column] if column else []))


def check_range(date_from: dt.date, date_to: dt.date) -> None:
    if date_to < date_from:
        raise ValidationError({"date_to": ValidationError("Must not be before date_from.", code="invalid")})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationError(
            {"date_to": ValidationError(f"At most {MAX_DAYS} days from date_from.", code="max_length")}
        )


def lead_response(
    *,
    date_from: dt.date,
    date_to: dt.date,
    group_by: str = "day",
    dealer_uuids: Sequence[uuid_lib.UUID] = (),
    now: dt.datetime | None = None,
) -> dict:
    """The lead response report (docs/REPORTS.md): one query whatever the number of leads, and one
    more for the details of the waiting leads it lists."""
    if group_by not in GROUPS:
        raise ValueError(group_by)
    check_range(date_from, date_to)
    now = now or timezone.now()
    sla = settings.LEAD_RESPONSE_SLA_MINUTES
    hours = working_hours()
    zone = timezone.get_default_timezone()
    start, end = day_bounds(date_from, date_to)
    rows = report_rows(leads(start=start, end=end, dealer_uuids=dealer_uuids), group_by)

    totals = Stats()
    groups: dict[object, Stats] = {}
    if group_by == "day":
        day = date_from
        while day <= date_to:
            groups[day] = Stats()
            day += dt.timedelta(days=1)
    waiting_rows: list[tuple[float, uuid_lib.UUID, float]] = []  # (came in, uuid, age)
    for uuid, came_in, contacted_at, is_open, *column in rows.iterator(chunk_size=5000):
        created = dt.datetime.fromtimestamp(came_in, zone)
        if contacted_at is None:
            response = None
        elif hours is None:
            response = max(contacted_at - came_in, 0.0) / 60
        else:
            response = elapsed_minutes(created, dt.datetime.fromtimestamp(contacted_at, zone), hours)
        age = elapsed_minutes(created, now, hours)
        key = column[0] if column else created.date()
        for stats in (totals, groups.setdefault(key, Stats())):
            stats.add(response, age=age, sla=sla, is_open=is_open)
        if response is None and is_open:
            waiting_rows.append((came_in, uuid, age))
    if group_by == "day":
        ordered = list(groups.items())
    else:  # the most leads first; the unassigned (None) after the named at a tie
        ordered = sorted(groups.items(), key=lambda item: (-item[1].leads, item[0] is None, str(item[0])))
    waiting_rows.sort()
    shown = waiting_rows[:WAITING_SHOWN]
    details = {}
    if shown:  # a second query, for the few shown
        found = Communication.objects.filter(uuid__in=[uuid for _, uuid, _ in shown]).values(*WAITING_COLUMNS)
        details = {row["uuid"]: row for row in found}
    return {
        "date_from": date_from,
        "date_to": date_to,
        "group_by": group_by,
        "sla_minutes": sla,
        "working_hours": f"{hours[0]:%H:%M}-{hours[1]:%H:%M}" if hours else None,
        "time_zone": str(zone),
        "generated_at": now,
        "totals": totals.as_dict(),
        "groups": [{"key": key, **stats.as_dict()} for key, stats in ordered],
        "waiting": {
            "count": len(waiting_rows),
            "results": [_waiting(details[uuid], age, sla) for _, uuid, age in shown if uuid in details],
        },
    }


def _waiting(row: dict, age: float, sla: int) -> dict:
    return {
        "uuid": row["uuid"],
        "method": row["method_id"],
        "status": row["status"],
        "client_uuid": row["client_uuid"],
        "employee_uuid": row["employee_uuid"],
        "dealer_uuid": row["dealer_uuid"],
        "subject": row["subject"],
        "date_created": row["date_created"],
        "age_minutes": math.floor(age),
        "past_sla": age > sla,
    }


# The dashboard's other counts


def open_planned_by_employee(
    *, dealer_uuids: Sequence[uuid_lib.UUID] = (), now: dt.datetime | None = None
) -> list[dict]:
    """Each employee's open planned communications and how many of them are overdue (planned
    start passed), most overdue first; from comm_open_planned_dealer_idx alone."""
    now = now or timezone.now()
    queryset = Communication.objects.filter(kind=Kind.PLANNED, status__in=OPEN_STATUSES, date_deleted__isnull=True)
    if dealer_uuids:
        queryset = queryset.filter(dealer_uuid__in=list(dealer_uuids))
    rows = (
        queryset.values("employee_uuid")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(date_planned_start__lt=now)))
        .order_by()
    )
    return sorted(
        rows, key=lambda row: (-row["overdue"], -row["open"], row["employee_uuid"] is None, str(row["employee_uuid"]))
    )


def attempts_by_outcome(*, day: dt.date, dealer_uuids: Sequence[uuid_lib.UUID] = ()) -> dict[str, int]:
    """The attempts made on `day` (the service's time zone) by outcome, every outcome present."""
    start, end = day_bounds(day, day)
    queryset = Attempt.objects.filter(date__gte=start, date__lt=end, communication__date_deleted__isnull=True)
    if dealer_uuids:
        queryset = queryset.filter(communication__dealer_uuid__in=list(dealer_uuids))
    counts = Counter(dict(queryset.values_list("outcome").annotate(n=Count("pk")).order_by()))
    return {outcome: counts.get(outcome, 0) for outcome in AttemptOutcome.values}


def dealers() -> list[uuid_lib.UUID]:
    """Every dealership communications name, in UUID order. On PostgreSQL a loose index scan of
    comm_dealer_list_idx: one probe per dealership, however many rows each has."""
    table = Communication._meta.db_table
    connection = connections[router.db_for_read(Communication)]
    if connection.vendor != "postgresql":
        return list(
            Communication.objects.filter(dealer_uuid__isnull=False)
            .order_by("dealer_uuid")
            .values_list("dealer_uuid", flat=True)
            .distinct()
        )
    sql = f"""
        WITH RECURSIVE found(dealer) AS (
            (SELECT dealer_uuid FROM {table} WHERE dealer_uuid IS NOT NULL ORDER BY dealer_uuid LIMIT 1)
            UNION ALL
            SELECT (SELECT dealer_uuid FROM {table} WHERE dealer_uuid > found.dealer ORDER BY dealer_uuid LIMIT 1)
            FROM found WHERE found.dealer IS NOT NULL
        )
        SELECT dealer FROM found WHERE dealer IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [
            row[0] if isinstance(row[0], uuid_lib.UUID) else uuid_lib.UUID(str(row[0])) for row in cursor.fetchall()
        ]
