"""The supervisors' dashboard in the admin: who may open it, that its numbers are the report's, that
each count links to a list of as many rows, its cost in queries, and the attempts on the page."""

import datetime as dt
import re
import uuid
from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from communications import reports
from communications.models import Attempt, Communication, Kind, Status

from .factories import CommunicationFactory, UserFactory
from .test_lead_response import DEALER_A, DEALER_B, E1, E2, fixture, lead, tried  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

URL = "/admin/communications/communication/dashboard/"
STAT = re.compile(r'<(?:a|span) class="stat[^"]*" data-key="([^"]+)" data-value="([^"]*)"(?: href="([^"]*)")?')


@pytest.fixture
def supervisor(client):
    """A member of the Supervisors group (made by a migration), staff, reading in English."""
    user = UserFactory(username="supervisor", is_staff=True)
    user.groups.add(Group.objects.get(name="Supervisors"))
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def stats(body: str) -> dict[str, tuple[str, str | None]]:
    return {key: (value, unescape(href) if href else None) for key, value, href in STAT.findall(body)}


def number(text: str):
    return None if text == "" else float(text)


def result_count(client, url: str) -> int:
    body = client.get(url).content.decode()
    found = re.search(r'<p class="paginator">\s*(\d+)', body)
    assert found, body[-3000:]
    return int(found.group(1))


def test_a_supervisor_opens_it_from_the_index(supervisor):
    index = supervisor.get("/admin/").content.decode()
    assert f'href="{URL}"' in index
    response = supervisor.get(URL)
    assert response.status_code == 200
    assert "Supervisors&#x27; dashboard" in response.content.decode()


def test_it_needs_the_reports_permission(client, user_with_perms):
    operator = user_with_perms(
        "communications.view_communication", "communications.change_communication", is_staff=True
    )
    client.force_login(operator)
    assert client.get(URL).status_code == 403
    assert URL not in client.get("/admin/").content.decode()
    client.logout()
    assert client.get(URL).status_code == 302  # to the login page


def test_every_number_is_the_reports_and_links_to_as_many_rows(supervisor, fixture):  # noqa: F811
    day = fixture["d"]
    body = supervisor.get(f"{URL}?dealer={DEALER_A}&day={day}").content.decode()
    found = stats(body)
    report = reports.lead_response(
        date_from=day - dt.timedelta(days=29), date_to=day, group_by="day", dealer_uuids=[DEALER_A]
    )
    the_day = report["groups"][-1]
    for prefix, source in (("day", the_day), ("window", report["totals"])):
        for key in (
            "leads",
            "contacted",
            "waiting",
            "within_sla",
            "missed_sla",
            "within_sla_share",
            "median_minutes",
            "p90_minutes",
        ):
            assert number(found[f"{prefix}.{key}"][0]) == source[key], (prefix, key)
    assert number(found["waiting.count"][0]) == report["waiting"]["count"] == 1  # L4; L12 came in after the day
    # Hand-computed for day D (see test_lead_response): 6 leads, 4 contacted, L4 waiting.
    assert (the_day["leads"], the_day["contacted"], the_day["waiting"]) == (6, 4, 1)
    for key in ("day.leads", "day.contacted", "day.waiting", "window.leads", "window.contacted", "waiting.count"):
        value, href = found[key]
        assert result_count(supervisor, href) == int(value), key


def test_the_employees_open_and_overdue_planned_communications(supervisor):
    now = timezone.now()
    for hours in (-3, -1, 5):
        CommunicationFactory(
            kind=Kind.PLANNED,
            dealer_uuid=DEALER_A,
            employee_uuid=E1,
            date_planned_start=now + dt.timedelta(hours=hours),
        )
    CommunicationFactory(
        kind=Kind.PLANNED, dealer_uuid=DEALER_A, employee_uuid=None, date_planned_start=now - dt.timedelta(hours=2)
    )
    CommunicationFactory(kind=Kind.PLANNED, dealer_uuid=DEALER_A, employee_uuid=E2, status=Status.DONE, date_finish=now)
    CommunicationFactory(
        kind=Kind.PLANNED, dealer_uuid=DEALER_B, employee_uuid=E1, date_planned_start=now - dt.timedelta(hours=2)
    )
    body = supervisor.get(f"{URL}?dealer={DEALER_A}").content.decode()
    rows = re.findall(r'<tr data-employee="([^"]+)">(.*?)</tr>', body, re.S)
    table = {employee: [(k, v, unescape(h)) for k, v, h in STAT.findall(row)] for employee, row in rows}
    assert {e: [(k, v) for k, v, _ in cells] for e, cells in table.items()} == {
        str(E1): [("open", "3"), ("overdue", "2")],
        "none": [("open", "1"), ("overdue", "1")],
    }
    for cells in table.values():
        for _key, value, href in cells:
            assert result_count(supervisor, href) == int(value)


def test_the_days_attempts_by_outcome_link_to_the_attempts(supervisor):
    when = timezone.now() - dt.timedelta(minutes=30)
    day = timezone.localtime(when).date()  # yesterday just after midnight
    mine = lead(when - dt.timedelta(hours=2))
    other = lead(when - dt.timedelta(hours=2), dealer=DEALER_B)
    for outcome in ("no_answer", "no_answer", "busy", "reached"):
        tried(mine, when, outcome=outcome)
    tried(other, when)
    body = supervisor.get(f"{URL}?dealer={DEALER_A}&day={day}").content.decode()
    assert stats(body)["attempts.total"][0] == "4"
    chart = body[body.index('class="chart attempts-chart"') :]
    links = re.findall(r'<a href="([^"]+)"><title>([^<]+)</title>', chart)
    counts = {title: unescape(href) for href, title in links}
    assert set(counts) == {"Reached: 1", "No answer: 2", "Busy: 1", "Wrong number: 0", "Left a message: 0"}
    for title, href in counts.items():
        assert result_count(supervisor, href) == int(title.rsplit(" ", 1)[1]), title


def test_the_chart_has_a_bar_per_day_with_the_reports_median(supervisor, fixture):  # noqa: F811
    day = fixture["d1"]
    body = supervisor.get(f"{URL}?dealer={DEALER_A}&day={day}").content.decode()
    chart = body[body.index('class="chart response-chart"') :]
    values = [float(v) for v in re.findall(r'class="bar"[^>]*data-value="([^"]+)"', chart)]
    assert values == [15.0, 3.0]  # day D's median and the next day's; the other 28 days had no contact
    assert 'class="threshold"' in chart


def test_bad_parameters_fall_back_to_the_defaults_with_an_error(supervisor):
    response = supervisor.get(f"{URL}?dealer=not-a-dealer&day=yesterday")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="errorlist') == 2  # both fields say what is wrong
    today = timezone.localdate()
    assert f"Lead response on {today:%m/%d/%Y}" in body  # today, every dealership


def test_the_dashboard_costs_the_same_queries_however_many_leads(supervisor, django_assert_max_num_queries):
    day = timezone.localdate() - dt.timedelta(days=1)
    for n in range(30):
        tried(
            lead(timezone.now() - dt.timedelta(days=1, minutes=n), employee=uuid.uuid4()),
            timezone.now() - dt.timedelta(hours=20),
        )
    with django_assert_max_num_queries(9):  # session, user, permissions (2), dealers, report, employees, attempts
        assert supervisor.get(f"{URL}?day={day}").status_code == 200


def test_an_operator_records_an_attempt_from_the_communications_page(client, admin_user, settings):
    settings.ATTEMPTS_MAX = 3
    client.force_login(admin_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    communication = CommunicationFactory(kind=Kind.PLANNED, date_planned_start=timezone.now() - dt.timedelta(minutes=5))
    page = client.get(f"/admin/communications/communication/{communication.pk}/change/").content.decode()
    assert 'id="record-attempt"' in page and 'id="state-machine"' in page
    response = client.post(
        f"/admin/communications/communication/{communication.pk}/attempt/",
        {"attempt-method": "messenger", "attempt-outcome": "no_answer", "attempt-comment": "WhatsApp: не прочитал"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Attempt recorded" in response.content.decode()
    row = Communication.objects.get(pk=communication.pk)
    assert (row.attempts_count, row.last_attempt_outcome) == (1, "no_answer")
    assert row.date_planned_start > timezone.now() + dt.timedelta(minutes=100)  # the policy re-planned it
    attempt = Attempt.objects.get()
    assert (attempt.method_id, attempt.source, attempt.created_by, attempt.comment) == (
        "messenger",
        "admin",
        admin_user,
        "WhatsApp: не прочитал",
    )
    page = client.get(f"/admin/communications/communication/{communication.pk}/change/").content.decode()
    assert "WhatsApp: не прочитал" in page  # the attempts inline


def test_a_refused_attempt_is_a_message_and_records_nothing(client, admin_user):
    client.force_login(admin_user)
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = client.post(
        f"/admin/communications/communication/{communication.pk}/attempt/",
        {"attempt-method": "call", "attempt-outcome": "maybe"},
        follow=True,
    )
    assert response.status_code == 200
    assert not Attempt.objects.exists()
    assert 'class="error"' in response.content.decode()
