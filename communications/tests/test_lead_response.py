"""GET /v3/reports/lead-response against a fixture computed by hand (docs/REPORTS.md), its query
count, its bad input, and its plan."""

import datetime as dt
import math
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from communications import reports, services
from communications.models import Kind, Source, Status
from conftest import AUTH_QUERIES

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db

URL = "/v3/reports/lead-response"
DEALER_A, DEALER_B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
E1, E2, E3 = uuid.UUID(int=0xE1), uuid.UUID(int=0xE2), uuid.UUID(int=0xE3)
MOSCOW = dt.timezone(dt.timedelta(hours=3))


@pytest.fixture
def reporter(api_as):
    return api_as("communications.view_reports")


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), MOSCOW)


def lead(created: dt.datetime, *, dealer=DEALER_A, employee=None, method="site_request", **kwargs):
    kwargs.setdefault("status", Status.IN_WORK)
    return CommunicationFactory(
        method_code=method,
        kind=Kind.ACTUAL,
        direction="inbound",
        dealer_uuid=dealer,
        employee_uuid=employee,
        date_created=created,
        date_start=created,
        **kwargs,
    )


def outbound(client, created: dt.datetime, *, method="call", **kwargs):
    kwargs.setdefault("kind", Kind.ACTUAL)
    return CommunicationFactory(
        method_code=method,
        direction="outbound",
        client_uuid=client,
        date_created=created,
        dealer_uuid=DEALER_A,
        **kwargs,
    )


def tried(communication, when: dt.datetime, outcome="no_answer", method="call"):
    services.attempt_record(
        uuid=communication.uuid, actor=None, source=Source.API, method=method, outcome=outcome, date=when
    )


@pytest.fixture
def fixture(settings):
    """Three days ago (D) to today, SLA 15 minutes. Hand-computed in the tests below."""
    settings.LEAD_RESPONSE_SLA_MINUTES = 15
    settings.LEAD_RESPONSE_WORKING_HOURS = None
    today = timezone.localdate()
    d = today - dt.timedelta(days=3)
    d1 = d + dt.timedelta(days=1)
    found = {"today": today, "d": d, "d1": d1}
    # L1: tried exactly 15 minutes later: at the SLA's boundary, within it.
    found["l1"] = lead(at(d, 10), employee=E1)
    tried(found["l1"], at(d, 10, 15))
    # L2: an app request tried 15 minutes and one second later: past the SLA.
    found["l2"] = lead(at(d, 11), employee=E1, method="mobile_app_request")
    tried(found["l2"], at(d, 11, 15, 1), outcome="reached")
    # L3: never tried itself; an SMS to the same client 7 minutes later is the contact (another method).
    found["l3"] = lead(at(d, 12), employee=E2)
    outbound(found["l3"].client_uuid, at(d, 12, 7), method="sms")
    # L4: no contact; a planned call to the client that was cancelled does not count; still open.
    found["l4"] = lead(at(d, 13), employee=E2)
    outbound(found["l4"].client_uuid, at(d, 13, 5), kind=Kind.PLANNED, status=Status.CANCELLED)
    outbound(found["l4"].client_uuid, at(d, 13, 6), date_deleted=timezone.now())  # deleted: does not count
    # L5: another client's call a minute later and a call to this client before the lead do not
    # count; its own attempt 40 minutes later does.
    found["l5"] = lead(at(d, 14), employee=E1)
    outbound(uuid.uuid4(), at(d, 14, 1))
    outbound(found["l5"].client_uuid, at(d, 13, 50))
    tried(found["l5"], at(d, 14, 40), outcome="busy", method="messenger")
    # L6: closed without any contact, no employee: not contacted, not waiting.
    found["l6"] = lead(at(d, 15), status=Status.DONE, date_finish=at(d, 16))
    # Not leads: an inbound call, an outbound site request, a deleted lead.
    lead(at(d, 10), method="call", details={"phone": "+79161234567"})
    CommunicationFactory(
        method_code="site_request", kind=Kind.ACTUAL, direction="outbound", dealer_uuid=DEALER_A, date_created=at(d, 10)
    )
    lead(at(d, 10), date_deleted=timezone.now())
    # M1, dealer B: an e-mail to the same client half an hour later.
    found["m1"] = lead(at(d, 10), dealer=DEALER_B, employee=E3)
    outbound(found["m1"].client_uuid, at(d, 10, 30), method="email", details={"email": "client@example.ru"})
    # L11, the day after: tried after 3 minutes and again later; the first counts.
    found["l11"] = lead(at(d1, 9), employee=E1)
    tried(found["l11"], at(d1, 9, 3))
    tried(found["l11"], at(d1, 9, 30))
    # L12: came in five minutes ago, no contact yet: waiting, not yet past the SLA.
    found["l12"] = lead(timezone.now() - dt.timedelta(minutes=5), employee=E2)
    return found


def stats(leads, contacted, waiting, within, missed, share, median, p90):
    return {
        "leads": leads,
        "contacted": contacted,
        "not_contacted": leads - contacted,
        "waiting": waiting,
        "within_sla": within,
        "missed_sla": missed,
        "within_sla_share": share,
        "median_minutes": median,
        "p90_minutes": p90,
    }


def test_dealer_a_by_day(reporter, fixture):
    d, d1, today = fixture["d"], fixture["d1"], fixture["today"]
    response = reporter.get(f"{URL}?dealer_uuid={DEALER_A}&date_from={d}&date_to={today}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["date_from"], body["date_to"], body["group_by"], body["sla_minutes"]) == (
        str(d),
        str(today),
        "day",
        15,
    )
    # Responses 3, 7, 15, 15 1/60 and 40 minutes; L4 and L6 missed, L12 pending.
    assert body["totals"] == stats(8, 5, 2, 3, 4, 0.4286, 15.0, 30.0)
    l12_day = timezone.localtime(fixture["l12"].date_created).date()
    expected_days = {
        d: stats(6, 4, 1, 2, 4, 0.3333, 15.0, 32.5),  # 7, 15, 15 1/60, 40
        d1: stats(1, 1, 0, 1, 0, 1.0, 3.0, 3.0),
        d + dt.timedelta(days=2): stats(0, 0, 0, 0, 0, None, None, None),
        today: stats(0, 0, 0, 0, 0, None, None, None),
    }
    expected_days[l12_day] = stats(1, 0, 1, 0, 0, None, None, None)
    assert [group["key"] for group in body["groups"]] == [str(d + dt.timedelta(days=n)) for n in range(4)]
    assert {dt.date.fromisoformat(g.pop("key")): g for g in body["groups"]} == expected_days
    waiting = body["waiting"]
    assert waiting["count"] == 2
    assert [(w["uuid"], w["past_sla"]) for w in waiting["results"]] == [
        (str(fixture["l4"].uuid), True),
        (str(fixture["l12"].uuid), False),
    ]
    l4_age = (timezone.now() - fixture["l4"].date_created).total_seconds() / 60
    assert abs(waiting["results"][0]["age_minutes"] - math.floor(l4_age)) <= 1
    assert waiting["results"][1]["age_minutes"] in (4, 5)
    assert waiting["results"][0]["employee_uuid"] == str(E2) and waiting["results"][0]["status"] == "in_work"


def test_every_dealership_by_dealer(reporter, fixture):
    response = reporter.get(f"{URL}?date_from={fixture['d']}&date_to={fixture['today']}&group_by=dealer")
    body = response.json()
    # Dealer B adds M1's 30 minutes: 3, 7, 15, 15 1/60, 30, 40.
    assert body["totals"] == stats(9, 6, 2, 3, 5, 0.375, 15.0, 35.0)
    assert [(g["key"], g["leads"], g["contacted"], g["median_minutes"]) for g in body["groups"]] == [
        (str(DEALER_A), 8, 5, 15.0),
        (str(DEALER_B), 1, 1, 30.0),
    ]


def test_dealer_a_by_employee(reporter, fixture):
    response = reporter.get(
        f"{URL}?dealer_uuid={DEALER_A}&date_from={fixture['d']}&date_to={fixture['today']}&group_by=employee"
    )
    groups = response.json()["groups"]
    assert [g["key"] for g in groups] == [str(E1), str(E2), None]
    assert [{k: v for k, v in g.items() if k != "key"} for g in groups] == [
        stats(4, 4, 0, 2, 2, 0.5, 15.0, 32.5),  # L1, L2, L5, L11: 3, 15, 15 1/60, 40
        stats(3, 1, 2, 1, 1, 0.5, 7.0, 7.0),  # L3 (7), L4 (missed), L12 (pending)
        stats(1, 0, 0, 0, 1, 0.0, None, None),  # L6
    ]


def test_several_dealerships_comma_separated_or_repeated(reporter, fixture):
    d, today = fixture["d"], fixture["today"]
    both = reporter.get(f"{URL}?dealer_uuid={DEALER_A},{DEALER_B}&date_from={d}&date_to={today}").json()
    repeated = reporter.get(f"{URL}?dealer_uuid={DEALER_A}&dealer_uuid={DEALER_B}&date_from={d}&date_to={today}").json()
    assert both["totals"]["leads"] == repeated["totals"]["leads"] == 9


def test_a_range_without_leads_and_the_defaults(reporter, fixture):
    body = reporter.get(URL).json()  # the last 30 days, by day
    assert (body["date_to"], body["date_from"]) == (
        str(fixture["today"]),
        str(fixture["today"] - dt.timedelta(days=29)),
    )
    assert len(body["groups"]) == 30 and body["totals"]["leads"] == 9
    empty = reporter.get(f"{URL}?date_from=2020-01-01&date_to=2020-01-02").json()
    assert empty["totals"] == stats(0, 0, 0, 0, 0, None, None, None)
    assert empty["waiting"] == {"count": 0, "results": []}


def test_working_hours_count_only_the_minutes_inside_them(reporter, settings):
    settings.LEAD_RESPONSE_WORKING_HOURS = (dt.time(9), dt.time(21))
    day = timezone.localdate() - dt.timedelta(days=2)
    late = lead(at(day, 20, 55))
    tried(late, at(day + dt.timedelta(days=1), 9, 5))  # five minutes before closing, five after opening
    body = reporter.get(f"{URL}?date_from={day}&date_to={day}").json()
    assert (body["totals"]["median_minutes"], body["totals"]["within_sla"], body["working_hours"]) == (
        10.0,
        1,
        "09:00-21:00",
    )
    settings.LEAD_RESPONSE_WORKING_HOURS = None
    body = reporter.get(f"{URL}?date_from={day}&date_to={day}").json()
    assert (body["totals"]["median_minutes"], body["totals"]["within_sla"]) == (730.0, 0)


@pytest.mark.parametrize("count", [3, 30])
def test_the_report_is_two_queries_whatever_the_number_of_leads(reporter, django_assert_num_queries, count):
    day = timezone.localdate() - dt.timedelta(days=1)
    for n in range(count):
        tried(lead(at(day, 10, n)), at(day, 11, n))
        lead(at(day, 12, n))  # waiting
    with django_assert_num_queries(2 + AUTH_QUERIES):  # the leads; the waiting ones' details
        body = reporter.get(f"{URL}?date_from={day}&date_to={day}&group_by=employee").json()
    assert (body["totals"]["contacted"], body["waiting"]["count"], len(body["waiting"]["results"])) == (
        count,
        count,
        count,
    )
    with django_assert_num_queries(1 + AUTH_QUERIES):  # nothing waiting: no second query
        reporter.get(f"{URL}?date_from=2020-01-01&date_to=2020-01-31")


def test_the_waiting_list_shows_the_oldest_two_hundred_and_counts_them_all(reporter, monkeypatch):
    monkeypatch.setattr(reports, "WAITING_SHOWN", 3)
    day = timezone.localdate() - dt.timedelta(days=1)
    made = [lead(at(day, 9, n)) for n in (5, 1, 4, 2, 3)]
    body = reporter.get(f"{URL}?date_from={day}&date_to={day}").json()
    assert body["waiting"]["count"] == 5
    by_minute = sorted(made, key=lambda c: c.date_created)
    assert [w["uuid"] for w in body["waiting"]["results"]] == [str(c.uuid) for c in by_minute[:3]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date_from=2026-11-10&date_to=2026-11-01", [("invalid", "date_to")]),
        ("date_from=2024-01-01&date_to=2025-12-31", [("max_length", "date_to")]),
        ("date_from=2026-13-01", [("invalid", "date_from")]),
        ("date_from=1.1.2026", [("invalid", "date_from")]),
        ("date_to=0001-01-01", [("out_of_range", "date_to")]),
        ("group_by=week", [("invalid_choice", "group_by")]),
        ("dealer_uuid=not-a-uuid", [("invalid", "dealer_uuid")]),
        ("dealer_uuid=", [("required", "dealer_uuid")]),
        ("dealer=00000000-0000-0000-0000-00000000000a", [("unknown_parameter", "dealer")]),
        ("group_by=day%00", [("invalid_choice", "group_by")]),
        ("date_to=", [("blank", "date_to")]),
        ("date_from=&group_by=", [("blank", "date_from"), ("blank", "group_by")]),
    ],
)
def test_bad_parameters_are_400_in_the_standard_shape(reporter, query, expected):
    response = reporter.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert [(e["code"], e["attr"]) for e in body["errors"]] == expected


def test_the_report_needs_its_own_permission(api_as):
    response = api_as("communications.view_communication").get(URL)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


SPREAD = """
    INSERT INTO communications_communication (uuid, method_id, kind, direction, status, client_uuid, employee_uuid,
        dealer_uuid, subject, comment, result, details, cancel_reason, fail_reason, date_created, date_updated, version)
    SELECT gen_random_uuid(), (ARRAY['call', 'visit', 'sms', 'email', 'site_request', 'mobile_app_request'])[1 + g % 6],
        'actual', CASE WHEN g % 6 >= 4 THEN 'inbound' ELSE 'outbound' END, 'in_work', ('00000000-0000-0000-0000-' ||
        lpad(to_hex(g % 1500), 12, '0'))::uuid, gen_random_uuid(), ('00000000-0000-0000-0000-' ||
        lpad(to_hex(g / 6 % 60), 12, '0'))::uuid, '', '', '', '{}', '', '', now() - g * interval '1 minute', now(), 1
    FROM generate_series(1, 6000) g
"""
ATTEMPTS = """
    INSERT INTO communications_attempt (uuid, communication_id, method_id, outcome, date, comment, source, call_id,
        date_created)
    SELECT gen_random_uuid(), uuid, 'call', 'no_answer', date_created + interval '3 minutes', '', 'api', '', now()
    FROM communications_communication WHERE direction = 'inbound'
"""


@pytest.mark.parametrize("dealers", [[], [uuid.UUID(int=3)]], ids=["every dealership", "one dealership"])
def test_the_report_reads_index_ranges_and_probes(dealers):
    with connection.cursor() as cursor:  # enough rows, and their statistics, for the planner to plan at scale
        cursor.execute(SPREAD)
        cursor.execute(ATTEMPTS)
        cursor.execute("ANALYZE communications_communication")
        cursor.execute("ANALYZE communications_attempt")
    now = timezone.now()
    rows = reports.report_rows(reports.leads(start=now - dt.timedelta(days=3), end=now, dealer_uuids=dealers))
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan and "Sort" not in plan, plan
    leads_index = "comm_lead_dealer_idx" if dealers else "comm_lead_idx"
    assert f"Index Scan using {leads_index} on communications_communication" in plan, plan
    assert "Index Only Scan using attempt_comm_date_idx on communications_attempt" in plan, plan
    assert "Index Only Scan using comm_outbound_client_idx on communications_communication" in plan, plan
