"""Attempts through the API, and the attempt policy they drive (issue 19)."""

import datetime as dt

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from communications.models import Attempt, Communication, CommunicationHistory, Kind, Status
from conftest import AUTH_QUERIES

from .factories import CommunicationFactory
from .test_api_concurrency import TX, _client_for, in_parallel

pytestmark = pytest.mark.django_db


def codes(response) -> list[tuple[str, str | None]]:
    return [(error["code"], error["attr"]) for error in response.json()["errors"]]


def made(**kwargs) -> Communication:
    """A communication created an hour ago, so that attempts can be dated in the last hour."""
    kwargs.setdefault("date_created", timezone.now() - dt.timedelta(hours=1))
    return CommunicationFactory(**kwargs)


def planned_call(**kwargs) -> Communication:
    kwargs.setdefault("date_planned_start", timezone.now() - dt.timedelta(minutes=10))
    return made(kind=Kind.PLANNED, **kwargs)


def attempt(api, communication, outcome="no_answer", **body):
    return api.post(
        f"/v2/communications/{communication.uuid}/attempts",
        {"method": "call", "outcome": outcome, **body},
        format="json",
    )


def history(communication) -> list[tuple]:
    return [
        (entry.source, entry.action, entry.transition, sorted(entry.changes))
        for entry in CommunicationHistory.objects.filter(communication=communication).order_by("date", "id")
    ]


def iso(value: dt.datetime) -> str:
    return timezone.localtime(value).isoformat()


def test_an_attempt_is_counted_on_the_communication_in_the_full_view_and_primary_info(api):
    communication = made(kind=Kind.ACTUAL)
    when = timezone.now() - dt.timedelta(minutes=3)

    response = attempt(api, communication, "busy", date=when.isoformat(), comment="С мобильного")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["method"], body["outcome"], body["comment"], body["source"], body["created_by"]) == (
        "call",
        "busy",
        "С мобильного",
        "api",
        api.user.username,
    )
    assert body["date"] == iso(when)
    assert body["communication"]["attempts_count"] == 1
    assert body["communication"]["last_attempt_at"] == iso(when)
    assert body["communication"]["last_attempt_outcome"] == "busy"
    assert body["communication"]["version"] == 2 and response["ETag"] == '"2"'
    row = Communication.objects.get(pk=communication.pk)
    assert (row.attempts_count, row.last_attempt_at, row.last_attempt_outcome, row.status) == (
        1,
        when,
        "busy",
        Status.IN_WORK,
    )
    full = api.get(f"/v2/communications/{communication.uuid}").json()
    assert (full["attempts_count"], full["last_attempt_at"], full["last_attempt_outcome"]) == (1, iso(when), "busy")
    card = api.get(f"/v2/communications/{communication.uuid}/primary-info").json()
    assert (card["attempts_count"], card["last_attempt_at"], card["last_attempt_outcome"]) == (1, iso(when), "busy")
    entry = CommunicationHistory.objects.filter(communication=communication).get()
    assert (entry.source, entry.action, entry.actor) == ("api", "update", api.user)
    assert entry.changes == {
        "attempts_count": [0, 1],
        "last_attempt_at": [None, DjangoJSONEncoder().default(when)],
        "last_attempt_outcome": ["", "busy"],
    }


def test_a_communication_without_attempts_shows_zero_and_nulls(api):
    communication = CommunicationFactory()
    full = api.get(f"/v2/communications/{communication.uuid}").json()
    assert (full["attempts_count"], full["last_attempt_at"], full["last_attempt_outcome"]) == (0, None, "")
    short = api.get(f"/v2/communications/{communication.uuid}?view=short").json()
    assert "attempts_count" not in short


def test_attempts_are_listed_newest_first(api):
    communication = made(kind=Kind.ACTUAL)
    now = timezone.now()
    for minutes, outcome in ((30, "no_answer"), (10, "reached"), (20, "busy")):
        assert (
            attempt(api, communication, outcome, date=(now - dt.timedelta(minutes=minutes)).isoformat()).status_code
            == 201
        )

    listed = api.get(f"/v2/communications/{communication.uuid}/attempts")

    assert listed.status_code == 200
    assert [a["outcome"] for a in listed.json()] == ["reached", "busy", "no_answer"]
    row = Communication.objects.get(pk=communication.pk)
    # A try recorded late with an earlier date is counted but is not the last attempt.
    assert (row.attempts_count, row.last_attempt_outcome) == (3, "reached")
    assert row.last_attempt_at == now - dt.timedelta(minutes=10)


def test_listing_attempts_costs_the_same_however_many_there_are(api, django_assert_num_queries):
    communication = made(kind=Kind.ACTUAL)
    for _ in range(5):
        attempt(api, communication, "no_answer")
    with django_assert_num_queries(2 + AUTH_QUERIES):  # the communication exists; its attempts with their users
        response = api.get(f"/v2/communications/{communication.uuid}/attempts")
    assert len(response.json()) == 5


def test_the_policy_replans_twice_then_fails_on_the_third(api, settings):
    settings.ATTEMPTS_MAX, settings.ATTEMPTS_RETRY_MINUTES = 3, 120
    communication = planned_call()
    planned = communication.date_planned_start

    first = attempt(api, communication)
    assert first.status_code == 201
    tried = dt.datetime.fromisoformat(first.json()["date"])
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count, row.date_planned_start) == (
        Status.CREATED,
        1,
        tried + dt.timedelta(minutes=120),
    )
    assert first.json()["communication"]["date_planned_start"] == iso(tried + dt.timedelta(minutes=120))
    assert row.date_planned_start > planned

    second = attempt(api, communication, "busy")
    tried = dt.datetime.fromisoformat(second.json()["date"])
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count, row.date_planned_start) == (
        Status.CREATED,
        2,
        tried + dt.timedelta(minutes=120),
    )

    third = attempt(api, communication, "no_answer")
    assert third.json()["communication"]["status"] == "failed"
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.attempts_count, row.last_attempt_outcome) == (
        Status.FAILED,
        "no_answer",
        3,
        "no_answer",
    )
    assert history(communication) == [
        ("api", "update", "", ["attempts_count", "last_attempt_at", "last_attempt_outcome"]),
        ("policy", "update", "", ["date_planned_start"]),
        ("api", "update", "", ["attempts_count", "last_attempt_at", "last_attempt_outcome"]),
        ("policy", "update", "", ["date_planned_start"]),
        ("api", "update", "", ["attempts_count", "last_attempt_at", "last_attempt_outcome"]),
        ("policy", "transition", "fail", ["fail_reason", "status"]),
    ]
    last = CommunicationHistory.objects.filter(communication=communication).order_by("-date", "-id").first()
    assert (last.status_from, last.status_to, last.actor) == ("created", "failed", api.user)
    # The fourth try is refused: the communication is final.
    fourth = attempt(api, communication)
    assert fourth.status_code == 409 and codes(fourth) == [("transition_not_allowed", None)]
    assert Attempt.objects.filter(communication=communication).count() == 3


@pytest.mark.parametrize(
    ("outcome", "fail_reason"),
    [("busy", "busy"), ("wrong_number", "wrong_number"), ("left_message", "no_answer"), ("no_answer", "no_answer")],
)
def test_the_attempt_at_the_limit_fails_with_the_reason_of_its_outcome(api, settings, outcome, fail_reason):
    settings.ATTEMPTS_MAX = 2
    communication = planned_call()
    attempt(api, communication, "no_answer")
    attempt(api, communication, outcome)
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason) == (Status.FAILED, fail_reason)


def test_a_reached_attempt_changes_no_status_and_no_plan(api, settings):
    settings.ATTEMPTS_MAX = 1
    communication = planned_call()
    response = attempt(api, communication, "reached")
    assert response.status_code == 201
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.date_planned_start, row.attempts_count, row.last_attempt_outcome) == (
        Status.CREATED,
        communication.date_planned_start,
        1,
        "reached",
    )
    assert [entry[0] for entry in history(communication)] == ["api"]


def test_with_the_policy_off_attempts_are_counted_and_nothing_else_changes(api, settings):
    settings.ATTEMPTS_POLICY = False
    communication = planned_call()
    for _ in range(4):
        assert attempt(api, communication).status_code == 201
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.date_planned_start, row.attempts_count) == (
        Status.CREATED,
        communication.date_planned_start,
        4,
    )
    assert {entry[0] for entry in history(communication)} == {"api"}


def test_per_method_limits_override_the_default(api, settings):
    settings.ATTEMPTS_MAX_BY_METHOD = {"call": 1, "visit": 0}
    call = planned_call()
    visit = planned_call(method_code="visit")
    attempt(api, call)
    attempt(api, visit)
    assert Communication.objects.get(pk=call.pk).status == Status.FAILED  # one try is the limit for calls
    row = Communication.objects.get(pk=visit.pk)  # 0: the policy leaves visits alone
    assert (row.status, row.date_planned_start) == (Status.CREATED, visit.date_planned_start)


def test_per_method_retry_minutes(api, settings):
    settings.ATTEMPTS_RETRY_MINUTES_BY_METHOD = {"call": 30}
    communication = planned_call()
    tried = dt.datetime.fromisoformat(attempt(api, communication).json()["date"])
    assert Communication.objects.get(pk=communication.pk).date_planned_start == tried + dt.timedelta(minutes=30)


def test_an_actual_communication_counts_attempts_without_the_policy(api, settings):
    settings.ATTEMPTS_MAX = 1
    communication = made(kind=Kind.ACTUAL, method_code="site_request", direction="inbound")
    assert attempt(api, communication).status_code == 201
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count) == (Status.IN_WORK, 1)


def test_a_plan_later_than_the_retry_is_not_moved_earlier(api):
    communication = planned_call(date_planned_start=timezone.now() + dt.timedelta(days=1))
    attempt(api, communication)
    row = Communication.objects.get(pk=communication.pk)
    assert (row.date_planned_start, row.attempts_count) == (communication.date_planned_start, 1)
    assert [entry[0] for entry in history(communication)] == ["api"]


def test_the_planned_window_moves_with_its_start(api):
    start = timezone.now() - dt.timedelta(hours=1)
    communication = planned_call(date_planned_start=start, date_planned_finish=start + dt.timedelta(minutes=30))
    tried = dt.datetime.fromisoformat(attempt(api, communication).json()["date"])
    row = Communication.objects.get(pk=communication.pk)
    assert row.date_planned_start == tried + dt.timedelta(minutes=120)
    assert row.date_planned_finish == row.date_planned_start + dt.timedelta(minutes=30)


def test_an_in_work_planned_call_is_replanned_and_stays_in_work(api):
    communication = planned_call(status=Status.IN_WORK)
    attempt(api, communication)
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK and row.date_planned_start > communication.date_planned_start


@pytest.mark.parametrize("status", [Status.DONE, Status.CANCELLED, Status.FAILED])
def test_a_final_communication_takes_no_attempt(api, status):
    communication = CommunicationFactory(kind=Kind.PLANNED, status=status)
    response = attempt(api, communication)
    assert response.status_code == 409 and codes(response) == [("transition_not_allowed", None)]
    assert not Attempt.objects.exists()
    assert Communication.objects.get(pk=communication.pk).version == communication.version


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"method": "call", "outcome": "maybe"}, [("invalid_choice", "outcome")]),
        ({"method": "call"}, [("required", "outcome")]),
        ({"outcome": "busy"}, [("required", "method")]),
        ({"method": "post", "outcome": "busy"}, [("method_inactive", "method")]),
        ({"method": "pigeon", "outcome": "busy"}, [("invalid_choice", "method")]),
        ({"method": "call", "outcome": "busy", "date": "2999-01-01T00:00:00Z"}, [("future", "date")]),
        ({"method": "call", "outcome": "busy", "date": "2000-01-01T00:00:00Z"}, [("before_created", "date")]),
        ({"method": "call", "outcome": "busy", "date": "yesterday"}, [("invalid", "date")]),
        ({"method": "call", "outcome": 1}, [("invalid", "outcome")]),
        ({"method": True, "outcome": "busy"}, [("invalid", "method")]),
        ({"method": "call", "outcome": "busy", "comment": "a\x00b"}, [("null_characters_not_allowed", "comment")]),
        ({"method": "call", "outcome": "busy", "comment": "x" * 10_001}, [("max_length", "comment")]),
        ({"method": "call", "outcome": "busy", "source": "policy"}, [("unknown_field", "source")]),
    ],
)
def test_bad_input_is_400_and_records_nothing(api, body, expected):
    communication = planned_call()
    response = api.post(f"/v2/communications/{communication.uuid}/attempts", body, format="json")
    assert response.status_code == 400, response.content
    assert codes(response) == expected
    assert not Attempt.objects.exists()
    assert Communication.objects.get(pk=communication.pk).attempts_count == 0


def test_a_malformed_body_and_a_list_body_are_400(api):
    communication = planned_call()
    url = f"/v2/communications/{communication.uuid}/attempts"
    assert api.generic("POST", url, "{", content_type="application/json").status_code == 400
    response = api.post(url, [{"method": "call", "outcome": "busy"}], format="json")
    assert response.status_code == 400
    assert not Attempt.objects.exists()


def test_unknown_and_deleted_communications_are_404(api):
    deleted = CommunicationFactory(date_deleted=timezone.now())
    for uuid in ("0191f1c2-6a3e-7c1d-9b8a-3f2e1d0c9b8a", deleted.uuid, "not-a-uuid"):
        response = api.post(f"/v2/communications/{uuid}/attempts", {"method": "call", "outcome": "busy"}, format="json")
        assert response.status_code == 404 and codes(response) == [("not_found", None)]
        assert api.get(f"/v2/communications/{uuid}/attempts").status_code == 404


def test_an_unknown_query_parameter_of_the_list_is_400(api):
    communication = planned_call()
    response = api.get(f"/v2/communications/{communication.uuid}/attempts?outcome=busy")
    assert response.status_code == 400


def test_a_retried_attempt_with_the_same_idempotency_key_is_recorded_once(api):
    communication = planned_call()
    url = f"/v2/communications/{communication.uuid}/attempts"
    body = {"method": "call", "outcome": "no_answer"}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="try-1")
    second = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="try-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert Communication.objects.get(pk=communication.pk).attempts_count == 1


def test_recording_needs_change_and_listing_needs_view(api_as):
    communication = planned_call()
    url = f"/v2/communications/{communication.uuid}/attempts"
    viewer = api_as("communications.view_communication")
    assert viewer.get(url).status_code == 200
    response = viewer.post(url, {"method": "call", "outcome": "busy"}, format="json")
    assert response.status_code == 403 and codes(response) == [("permission_denied", None)]


@TX
def test_concurrent_attempts_on_one_communication_are_each_counted_once(api, settings):
    settings.ATTEMPTS_MAX = 100
    communication = planned_call()
    url = f"/v2/communications/{communication.uuid}/attempts"
    clients = [_client_for(api.user) for _ in range(12)]

    responses = in_parallel(
        [lambda c=c: c.post(url, {"method": "call", "outcome": "no_answer"}, format="json") for c in clients]
    )

    assert [r.status_code for r in responses] == [201] * 12
    row = Communication.objects.get(pk=communication.pk)
    assert row.attempts_count == 12 == Attempt.objects.filter(communication=communication).count()
    counted = sorted(r.json()["communication"]["attempts_count"] for r in responses)
    assert counted == list(range(1, 13))  # each saw its own count: none lost, none twice
    counts = [
        entry.changes["attempts_count"]
        for entry in CommunicationHistory.objects.filter(communication=communication, source="api")
    ]
    assert sorted(counts) == [[n, n + 1] for n in range(12)]
    replans = CommunicationHistory.objects.filter(communication=communication, source="policy").count()
    assert replans >= 1 and row.version == 1 + 12 + replans  # a re-plan only moves the plan later
    assert row.status == Status.CREATED and row.date_planned_start == row.last_attempt_at + dt.timedelta(hours=2)


@TX
def test_concurrent_attempts_past_the_limit_fail_it_once(api, settings):
    settings.ATTEMPTS_MAX = 3
    communication = planned_call()
    url = f"/v2/communications/{communication.uuid}/attempts"
    clients = [_client_for(api.user) for _ in range(6)]

    responses = in_parallel(
        [lambda c=c: c.post(url, {"method": "call", "outcome": "busy"}, format="json") for c in clients]
    )

    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 3
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.attempts_count) == (Status.FAILED, "busy", 3)
    assert Attempt.objects.filter(communication=communication).count() == 3
    transitions = CommunicationHistory.objects.filter(communication=communication, action="transition")
    assert [(t.source, t.transition) for t in transitions] == [("policy", "fail")]


@TX
def test_every_attempt_and_policy_step_is_in_the_change_feed(api_as, settings):
    from .feed import FEED_PERMS, read_all, wait_for

    settings.ATTEMPTS_MAX = 2
    client = api_as("communications.view_communication", "communications.change_communication", *FEED_PERMS)
    communication = planned_call()
    _, start = read_all(client)
    attempt(client, communication, "no_answer")
    last = attempt(client, communication, "busy").json()["communication"]

    seen, _ = wait_for(client, 4, after=start, subject=str(communication.uuid))

    assert [(e["type"], e["data"]["source"], sorted(e["data"]["changes"])) for e in seen] == [
        ("communication.updated", "api", ["attempts_count", "last_attempt_at", "last_attempt_outcome"]),
        ("communication.updated", "policy", ["date_planned_start"]),
        ("communication.updated", "api", ["attempts_count", "last_attempt_at", "last_attempt_outcome"]),
        ("communication.status_changed", "policy", ["fail_reason", "status"]),
    ]
    assert seen[-1]["data"]["transition"] == {"name": "fail", "from": "created", "to": "failed"}
    assert seen[-1]["data"]["actor"] == client.user.username
    assert seen[-1]["data"]["communication"] == last  # the attempt's answer is the feed's last view
    assert seen[-1]["data"]["communication"]["attempts_count"] == 2
