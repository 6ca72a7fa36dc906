"""POST /v2/telephony/events: call outcomes from the PBX, and the circuit breaker's recovery."""

import time

import pytest
import requests
from rest_framework.test import APIClient

from communications import services
from communications.models import Communication, CommunicationHistory, Kind, Source, Status
from communications.tests.factories import CommunicationFactory
from telephony.ari import AsteriskBreaker
from telephony.models import CallLog

pytestmark = pytest.mark.django_db
URL = "/v2/telephony/events"
SECRET = "pbx-shared-secret"


@pytest.fixture
def pbx(settings):
    settings.TELEPHONY_EVENTS_SECRET = SECRET
    client = APIClient()
    client.credentials(HTTP_X_TELEPHONY_SECRET=SECRET)
    return client


@pytest.fixture
def placed_call(db):
    communication = CommunicationFactory(kind=Kind.ACTUAL, details={"phone": "+79161234567"})
    return CallLog.objects.create(
        communication=communication,
        channel_id="chan-1",
        extension="101",
        phone="+79161234567",
        state="placed",
        date_requested=communication.date_created,
    )


def log_of(call) -> CallLog:
    return CallLog.objects.get(pk=call.pk)


def test_answered_then_hangup(pbx, placed_call):
    answered = pbx.post(URL, {"channel_id": "chan-1", "event": "answered"}, format="json")
    assert answered.status_code == 202 and answered.json()["state"] == "answered"
    hangup = pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "cause": 16, "duration_sec": 42}, format="json")
    assert hangup.status_code == 202
    body = hangup.json()
    assert (body["state"], body["hangup_cause"], body["hangup_cause_name"], body["duration_sec"]) == (
        "ended",
        16,
        "normal",
        42,
    )
    log = log_of(placed_call)
    assert log.date_answered is not None and log.date_ended is not None
    communication = Communication.objects.get(pk=placed_call.communication_id)
    assert communication.details == {"phone": "+79161234567", "call_id": "chan-1", "duration_sec": 42}
    assert CommunicationHistory.objects.filter(communication=communication, source="telephony").exists()


def test_hangup_before_answered_keeps_the_call_ended(pbx, placed_call):
    pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "cause": "19"}, format="json")
    late = pbx.post(URL, {"channel_id": "chan-1", "event": "answered"}, format="json")
    assert late.status_code == 202
    log = log_of(placed_call)
    assert (log.state, log.hangup_cause, log.hangup_cause_name) == ("ended", 19, "no_answer")


def test_the_same_event_twice_changes_nothing_more(pbx, placed_call):
    event = {"channel_id": "chan-1", "event": "hangup", "cause": 17, "duration_sec": 0}
    pbx.post(URL, event, format="json")
    first = log_of(placed_call)
    history = CommunicationHistory.objects.count()
    pbx.post(URL, event, format="json")
    again = log_of(placed_call)
    assert (again.state, again.date_ended, again.hangup_cause, again.duration_sec) == (
        first.state,
        first.date_ended,
        17,
        0,
    )
    assert CommunicationHistory.objects.count() == history


def test_a_partial_event_never_blanks_stored_fields(pbx, placed_call):
    pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "cause": 16, "duration_sec": 30}, format="json")
    pbx.post(URL, {"channel_id": "chan-1", "event": "hangup"}, format="json")
    pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "cause": None, "duration_sec": None}, format="json")
    log = log_of(placed_call)
    assert (log.hangup_cause, log.duration_sec) == (16, 30)


def test_unknown_cause_is_kept(pbx, placed_call):
    response = pbx.post(URL, {"channel_id": "chan-1", "event": "HANGUP", "cause": 127}, format="json")
    assert response.status_code == 202
    assert (response.json()["hangup_cause"], response.json()["hangup_cause_name"]) == (127, "other")


def test_unknown_event_word_is_accepted_without_a_state_change(pbx, placed_call):
    response = pbx.post(URL, {"channel_id": "chan-1", "event": "progress", "extra": "ignored"}, format="json")
    assert response.status_code == 202
    assert log_of(placed_call).state == "placed"


def test_outcome_is_recorded_on_a_communication_already_closed(pbx, placed_call):
    services.communication_transition(uuid=placed_call.communication_id, name="close", actor=None, source=Source.API)
    pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "duration_sec": 12}, format="json")
    communication = Communication.objects.get(pk=placed_call.communication_id)
    assert communication.status == Status.DONE
    assert communication.details["duration_sec"] == 12


@pytest.mark.parametrize("secret", [None, "wrong", ""])
def test_wrong_or_missing_secret_is_401(settings, placed_call, secret):
    settings.TELEPHONY_EVENTS_SECRET = SECRET
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_X_TELEPHONY_SECRET=secret)
    response = client.post(URL, {"channel_id": "chan-1", "event": "hangup"}, format="json")
    assert response.status_code == 401
    assert log_of(placed_call).state == "placed"


def test_a_user_token_is_not_the_pbx_secret(api, settings, placed_call):
    settings.TELEPHONY_EVENTS_SECRET = SECRET
    assert api.post(URL, {"channel_id": "chan-1", "event": "hangup"}, format="json").status_code == 401


def test_no_secret_configured_is_503(settings, placed_call):
    settings.TELEPHONY_EVENTS_SECRET = ""
    client = APIClient()
    client.credentials(HTTP_X_TELEPHONY_SECRET="anything")
    response = client.post(URL, {"channel_id": "chan-1", "event": "hangup"}, format="json")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "telephony_not_configured"


def test_unknown_channel_is_404(pbx, placed_call):
    response = pbx.post(URL, {"channel_id": "nope", "event": "hangup"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"event": "hangup"},
        {"channel_id": "chan-1"},
        {"channel_id": "chan-1", "event": "hangup", "cause": "busy"},
        {"channel_id": "chan-1", "event": "hangup", "cause": 40000},  # beyond the column: 400, not 500
    ],
)
def test_malformed_events_are_400(pbx, placed_call, body):
    assert pbx.post(URL, body, format="json").status_code == 400


def test_breaker_lets_requests_through_again_after_the_cooldown():
    breaker = AsteriskBreaker(failure_threshold=2, recovery_timeout=0.2)

    def fail():
        with breaker:
            raise requests.ConnectTimeout()

    def succeed():
        with breaker:
            pass

    with pytest.raises(requests.ConnectTimeout):
        fail()
    assert not breaker.opened  # one failure: still closed
    with pytest.raises(requests.ConnectTimeout):
        fail()
    assert breaker.opened
    time.sleep(0.25)
    assert not breaker.opened  # the trial may go through
    with pytest.raises(requests.ConnectTimeout):
        fail()  # and fails: open again at once
    assert breaker.opened
    time.sleep(0.25)
    succeed()
    with pytest.raises(requests.ConnectTimeout):
        fail()
    assert not breaker.opened  # closed again: one failure is not enough


def test_an_answer_even_a_refusal_is_not_a_failure():
    breaker = AsteriskBreaker(failure_threshold=1, recovery_timeout=60)
    with pytest.raises(ValueError), breaker:
        raise ValueError("not a network error")
    assert not breaker.opened


def test_the_dialplan_can_report_the_clients_dial_status(pbx, placed_call):
    pbx.post(URL, {"channel_id": "chan-1", "event": "answered"}, format="json")
    response = pbx.post(
        URL,
        {"channel_id": "chan-1", "event": "hangup", "cause": 16, "cause_txt": "Normal Clearing", "dialstatus": "busy"},
        format="json",
    )
    body = response.json()
    assert (body["client_outcome"], body["outcome"], body["hangup_cause_txt"]) == (
        "busy",
        "client_busy",
        "Normal Clearing",
    )
    unknown = pbx.post(URL, {"channel_id": "chan-1", "event": "hangup", "dialstatus": "WEIRD"}, format="json")
    assert unknown.status_code == 202 and unknown.json()["client_outcome"] == "busy"


def test_without_a_duration_it_runs_from_answer_to_end(placed_call):
    from datetime import timedelta

    from telephony.services import call_event

    answered = placed_call.date_requested + timedelta(seconds=5)
    call_event(channel_id="chan-1", event="hangup", cause=16, at=answered + timedelta(seconds=61.4))
    call_event(channel_id="chan-1", event="answered", at=answered)  # late, but before the end
    log = log_of(placed_call)
    assert (log.state, log.date_answered, log.duration_sec) == ("ended", answered, 61)
