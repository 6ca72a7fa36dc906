"""A click-to-call is an attempt: its outcome, as the ARI events listener settles it, drives the
attempt policy (issue 19). Clicks through the API, events over a real WebSocket (the stand-in ARI)."""

import datetime as dt

import pytest
from django.utils import timezone

from communications import services
from communications.models import Attempt, Communication, CommunicationHistory, Kind, Status
from communications.tests.factories import CommunicationFactory
from telephony.models import CallLog

from .test_listener import (
    ANSWERED,
    DIAL_ANSWER,
    NO_ANSWER,
    STATE_UP,
    TALKED,
    UNANSWERED,
    at,
    channel_event,
    destroyed,
    dial,
    heard,
    listen,
    with_channel,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller(api_as):
    return api_as("communications.call_phone", "communications.view_communication")


def planned_call(**kwargs) -> Communication:
    kwargs.setdefault("date_planned_start", timezone.now() - dt.timedelta(minutes=5))
    kwargs.setdefault("date_created", timezone.now() - dt.timedelta(hours=1))
    return CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"}, **kwargs)


def click(caller, communication) -> str:
    response = caller.post(f"/v2/communications/{communication.uuid}/call-phone", {"extension": "101"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["channel_id"]


def agent_no_answer(ari_events, channel: str) -> None:
    """The employee's phone rang out (ChannelDestroyed, cause 19, never Up): heard by a listener."""
    script = [
        channel_event("ChannelCreated", channel, "Down", at("45.548")),
        *with_channel([NO_ANSWER], UNANSWERED, channel),
    ]
    ari_events.scripts.append(script)
    listen(heard(len(script)))


def history(communication) -> list[tuple[str, str, str]]:
    entries = CommunicationHistory.objects.filter(communication=communication).order_by("date", "id")
    return [(e.source, e.action, e.transition or ",".join(sorted(e.changes))) for e in entries]


ATTEMPT = "attempts_count,last_attempt_at,last_attempt_outcome"


def test_three_unanswered_clicks_replan_twice_then_fail_the_call(caller, ari_events, fake_ari, settings):
    settings.ATTEMPTS_MAX, settings.ATTEMPTS_RETRY_MINUTES = 3, 120
    communication = planned_call()

    first = click(caller, communication)
    agent_no_answer(ari_events, first)
    row = Communication.objects.get(pk=communication.pk)
    requested = CallLog.objects.get(channel_id=first).date_requested
    assert (row.status, row.attempts_count, row.last_attempt_outcome) == (Status.IN_WORK, 1, "no_answer")
    assert row.date_planned_start == requested + dt.timedelta(minutes=120)

    second = click(caller, communication)
    agent_no_answer(ari_events, second)
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count) == (Status.IN_WORK, 2)
    assert row.date_planned_start == CallLog.objects.get(channel_id=second).date_requested + dt.timedelta(minutes=120)

    third = click(caller, communication)
    agent_no_answer(ari_events, third)
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.attempts_count) == (Status.FAILED, "no_answer", 3)

    attempts = caller.get(f"/v2/communications/{communication.uuid}/attempts").json()
    assert [(a["method"], a["outcome"], a["source"], a["call_id"]) for a in attempts] == [
        ("call", "no_answer", "telephony", third),
        ("call", "no_answer", "telephony", second),
        ("call", "no_answer", "telephony", first),
    ]
    assert {a["created_by"] for a in attempts} == {caller.user.username}
    assert all(CallLog.objects.get(channel_id=c).attempt_id is not None for c in (first, second, third))
    started, *rest = history(communication)
    assert started == ("telephony", "transition", "start")
    steps = [entry for entry in rest if entry[2] not in ("details",)]
    again = "attempts_count,last_attempt_at"  # the outcome is the same as the last one's
    assert steps == [
        ("telephony", "update", ATTEMPT),
        ("policy", "update", "date_planned_start"),
        ("telephony", "update", again),
        ("policy", "update", "date_planned_start"),
        ("telephony", "update", again),
        ("policy", "transition", "fail"),
    ]
    failed = CommunicationHistory.objects.get(communication=communication, transition="fail")
    assert (failed.status_from, failed.status_to, failed.actor) == ("in_work", "failed", caller.user)


def test_a_talked_call_is_a_reached_attempt_and_changes_no_plan(caller, ari_events, fake_ari, settings):
    settings.ATTEMPTS_MAX = 1
    communication = planned_call()
    channel = click(caller, communication)
    planned = Communication.objects.get(pk=communication.pk).date_planned_start
    ari_events.scripts = [with_channel(TALKED, ANSWERED, channel)]

    listen(heard(len(TALKED)))

    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count, row.last_attempt_outcome, row.date_planned_start) == (
        Status.IN_WORK,
        1,
        "reached",
        planned,
    )
    assert Attempt.objects.get().outcome == "reached"


def test_a_busy_client_is_a_busy_attempt(caller, ari_events, fake_ari, settings):
    settings.ATTEMPTS_MAX = 1
    communication = planned_call()
    channel = click(caller, communication)
    script = with_channel(
        [
            STATE_UP,
            dial("", at("45.550")),
            dial("BUSY", at("46.100")),
            destroyed(ANSWERED, 17, "User busy", at("46.2")),
        ],
        ANSWERED,
        channel,
    )
    ari_events.scripts = [script]

    listen(heard(len(script)))

    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.last_attempt_outcome) == (Status.FAILED, "busy", "busy")


def test_the_client_leg_reported_after_the_hangup_corrects_the_attempt_not_the_count(
    caller, ari_events, fake_ari, settings
):
    settings.ATTEMPTS_MAX = 3
    communication = planned_call()
    channel = click(caller, communication)
    hung_up = destroyed(ANSWERED, 16, "Normal Clearing", at("47.612"))
    script = with_channel([STATE_UP, hung_up, DIAL_ANSWER, hung_up], ANSWERED, channel)  # reordered, repeated
    ari_events.scripts = [script]

    listen(heard(len(script)))

    call = CallLog.objects.get(channel_id=channel)
    assert call.outcome == "talked"
    row = Communication.objects.get(pk=communication.pk)
    assert (row.attempts_count, row.last_attempt_outcome) == (1, "reached")
    assert Attempt.objects.get().outcome == "reached"
    # The first end read as no answer had re-planned it; the count stays one attempt.
    assert [e for e in history(communication) if e[0] == "policy"] == [("policy", "update", "date_planned_start")]


def test_a_call_ending_after_the_communication_was_closed_still_counts(caller, ari_events, fake_ari):
    communication = planned_call()
    channel = click(caller, communication)
    services.communication_transition(uuid=communication.uuid, name="close", actor=caller.user, source="api")
    agent_no_answer(ari_events, channel)

    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.attempts_count, row.last_attempt_outcome) == (Status.DONE, 1, "no_answer")
    assert not CommunicationHistory.objects.filter(communication=communication, source="policy").exists()


def test_a_call_that_never_rang_is_no_attempt(caller, fake_ari, telephony_settings):
    communication = planned_call()
    telephony_settings.ASTERISK_ENDPOINT_TEMPLATE = "Bogus/{extension}"  # the fake ARI: 500 Allocation failed
    response = caller.post(f"/v2/communications/{communication.uuid}/call-phone", {"extension": "101"}, format="json")
    assert response.status_code == 502
    assert Communication.objects.get(pk=communication.pk).attempts_count == 0
    assert not Attempt.objects.exists()


def test_the_pbx_events_endpoint_settles_the_attempt_the_same_way(caller, fake_ari, settings):
    """The fallback path (POST /v2/telephony/events) goes through the same call_event rule."""
    from rest_framework.test import APIClient

    settings.TELEPHONY_EVENTS_SECRET = "pbx-shared-secret"
    settings.ATTEMPTS_MAX = 1
    communication = planned_call()
    channel = click(caller, communication)
    pbx = APIClient()
    pbx.credentials(HTTP_X_TELEPHONY_SECRET="pbx-shared-secret")
    body = {"channel_id": channel, "event": "hangup", "cause": 17, "dialstatus": "BUSY"}

    for _ in range(2):  # repeated: counted once
        assert pbx.post("/v2/telephony/events", body, format="json").status_code == 202

    row = Communication.objects.get(pk=communication.pk)
    assert (row.attempts_count, row.last_attempt_outcome, row.status, row.fail_reason) == (
        1,
        "busy",
        Status.FAILED,
        "busy",
    )
