"""manage.py telephony_events: ARI's events over a real WebSocket (a stand-in on 127.0.0.1) move the
call log. The events are those of shared/ARI-NOTES.md (tests/data), the rest built from their shapes."""

import copy
import json
import logging
import random
import time
from datetime import datetime

import pytest

from communications.models import Communication, Kind
from communications.tests.factories import CommunicationFactory
from telephony.ari import AriConfig
from telephony.listener import Listener, events_url
from telephony.models import CallLog, EventListener

from .conftest import ari_json

pytestmark = pytest.mark.django_db

STATE_UP = ari_json("ari_channel_state_change_up.json")  # channel evt2-answered goes Up
DIAL_ANSWER = ari_json("ari_dial_answer.json")  # its client leg 1795807965.20 answered
NO_ANSWER = ari_json("ari_channel_destroyed_no_answer.json")  # evt2-unanswered, cause 19
ANSWERED, UNANSWERED, CLIENT_LEG = "evt2-answered", "evt2-unanswered", "1795807965.20"


def at(seconds: str) -> str:
    return f"2026-11-27T19:32:{seconds}+0000"


def channel_event(kind: str, channel_id: str, state: str, timestamp: str, **extra) -> dict:
    """An event of the notes' shape (their ChannelStateChange's channel object) for another moment."""
    event = copy.deepcopy(STATE_UP)
    event.update(type=kind, timestamp=timestamp, **extra)
    event["channel"].update(id=channel_id, state=state)
    return event


def dial(status: str, timestamp: str) -> dict:
    event = copy.deepcopy(DIAL_ANSWER)
    event.update(dialstatus=status, timestamp=timestamp)
    return event


def destroyed(channel_id: str, cause: int, cause_txt: str, timestamp: str) -> dict:
    event = channel_event("ChannelDestroyed", channel_id, "Up", timestamp, cause=cause, cause_txt=cause_txt)
    event["channel"]["dialplan"].update(context="from-crm", exten="h")  # the hangup handler ran
    return event


NOISE = [
    {"type": "DeviceStateChanged", "timestamp": at("45.547"), "device_state": {"name": "PJSIP/101", "state": "INUSE"}},
    channel_event("ChannelVarset", ANSWERED, "Up", at("45.549"), variable="COMMUNICATION_UUID", value="x"),
    channel_event("ChannelDialplan", ANSWERED, "Up", at("45.549"), dialplan_app="Dial"),
    {"type": "BridgeCreated", "timestamp": at("45.553"), "bridge": {"id": "b-1"}},
]
# Agent answers, the dialplan dials the client, who answers and hangs up after 2 s (the notes' table).
TALKED = [
    channel_event("ChannelCreated", ANSWERED, "Down", at("45.546")),
    channel_event("ChannelCreated", f"{ANSWERED};2", "Ring", at("45.546")),
    STATE_UP,
    *NOISE,
    dial("", at("45.550")),
    DIAL_ANSWER,
    destroyed(CLIENT_LEG, 16, "Normal Clearing", at("47.610")),
    destroyed(ANSWERED, 16, "Normal Clearing", at("47.612")),
]


def when(seconds: str) -> datetime:
    return datetime.fromisoformat(at(seconds))


@pytest.fixture
def make_call():
    def make(channel_id: str, state: str = "placed", **fields) -> CallLog:
        communication = CommunicationFactory(kind=Kind.ACTUAL, details={"phone": "+79161234567"})
        return CallLog.objects.create(
            communication=communication,
            channel_id=channel_id,
            extension="101",
            phone="+79161234567",
            state=state,
            date_requested=communication.date_created,
            **fields,
        )

    return make


def listen(until, *, timeout: float = 10.0, **options) -> Listener:
    """Run a listener in this thread (the test's database transaction) until `until(listener)`."""
    listener = Listener(
        config=AriConfig.from_settings(),
        backoff_initial=0.02,
        backoff_max=0.1,
        heartbeat_every=0.2,
        sweep_every=0.1,
        **options,
    )
    deadline = time.monotonic() + timeout
    listener.run(until=lambda: until(listener) or time.monotonic() > deadline)
    assert until(listener), f"gave up waiting: {dict(listener.stats)}"
    return listener


def heard(count: int):
    return lambda listener: listener.stats["messages"] >= count


def outcome(call: CallLog) -> tuple:
    row = CallLog.objects.get(pk=call.pk)
    return (
        row.state,
        row.date_answered,
        row.date_ended,
        row.hangup_cause,
        row.hangup_cause_txt,
        row.client_outcome,
        row.duration_sec,
        row.outcome,
    )


TALKED_OUTCOME = ("ended", when("45.548"), when("47.612"), 16, "Normal Clearing", "answered", 2, "talked")


def test_agent_answered_client_answered_then_normal_clearing(ari_events, fake_ari, make_call):
    call = make_call(ANSWERED)
    fake_ari.live_channels.add(ANSWERED)
    ari_events.scripts = [TALKED]

    listen(heard(len(TALKED)))

    assert outcome(call) == TALKED_OUTCOME
    communication = Communication.objects.get(pk=call.communication_id)
    assert communication.details == {"phone": "+79161234567", "call_id": ANSWERED, "duration_sec": 2}
    assert ari_events.requests[0][0] == "/ari/events?app=crm&subscribeAll=true"


def test_agent_never_answers_only_channel_destroyed_cause_19(ari_events, fake_ari, make_call):
    call = make_call(UNANSWERED)
    fake_ari.live_channels.add(UNANSWERED)
    script = [channel_event("ChannelCreated", UNANSWERED, "Down", at("45.548")), NO_ANSWER]
    ari_events.scripts = [script]

    listen(heard(len(script)))

    assert outcome(call) == (
        "ended",
        None,
        when("50.554"),
        19,
        "User alerting, no answer",
        "",
        None,
        "agent_no_answer",
    )
    assert CallLog.objects.get(pk=call.pk).hangup_cause_name == "no_answer"


def test_client_busy(ari_events, fake_ari, make_call):
    call = make_call(ANSWERED)
    fake_ari.live_channels.add(ANSWERED)
    script = [
        STATE_UP,
        dial("", at("45.550")),
        dial("BUSY", at("46.100")),
        destroyed(ANSWERED, 17, "User busy", at("46.2")),
    ]
    ari_events.scripts = [script]

    listen(heard(len(script)))

    row = CallLog.objects.get(pk=call.pk)
    assert (row.state, row.client_outcome, row.outcome, row.hangup_cause, row.hangup_cause_name) == (
        "ended",
        "busy",
        "client_busy",
        17,
        "busy",
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_duplicated_and_reordered_events_give_the_same_outcome(ari_events, fake_ari, make_call, seed):
    call = make_call(ANSWERED)
    fake_ari.live_channels.add(ANSWERED)
    script = TALKED[2:] * 2  # everything after the channels' creation (the call is known from the log)
    random.Random(seed).shuffle(script)
    ari_events.scripts = [script]

    listen(heard(len(script)))

    assert outcome(call) == TALKED_OUTCOME


def test_an_answered_after_the_end_does_not_reopen_the_call(ari_events, fake_ari, make_call):
    call = make_call(UNANSWERED)
    fake_ari.live_channels.add(UNANSWERED)
    late_up = channel_event("ChannelStateChange", UNANSWERED, "Up", at("59.000"))
    ari_events.scripts = [[NO_ANSWER, late_up, NO_ANSWER]]

    listen(heard(3))

    row = CallLog.objects.get(pk=call.pk)
    assert (row.state, row.date_answered, row.outcome) == ("ended", None, "agent_no_answer")


def test_unknown_channels_and_event_types_are_ignored_without_a_query(
    ari_events, fake_ari, make_call, django_assert_num_queries
):
    call = make_call(ANSWERED)
    listener = Listener(config=AriConfig.from_settings())
    listener.channels = {ANSWERED: None}
    strangers = [
        channel_event("ChannelStateChange", "1795807965.77", "Up", at("45.548")),
        destroyed("1795807965.77", 16, "Normal Clearing", at("46.0")),
        {**dial("ANSWER", at("46.0")), "caller": {"id": "1795807965.77"}},
        {"type": "StasisStart", "channel": {"id": ANSWERED}},
        {"type": "ChannelHangupRequest", "cause": 16, "channel": {"id": ANSWERED}},
        {"type": "ChannelStateChange", "channel": {"id": ANSWERED, "state": "Ringing"}},
        {"type": "ChannelDestroyed", "channel": "not an object"},
        {"no": "type"},
    ]

    with django_assert_num_queries(0):
        for event in strangers:
            listener.handle(json.dumps(event))
        for garbage in ["not json", "[1, 2]", "null", b"\xff"]:
            listener.handle(garbage)
    with django_assert_num_queries(1):  # a channel's creation: is it one of ours?
        listener.handle(json.dumps(channel_event("ChannelCreated", "1795807965.78", "Down", at("45.0"))))
    assert "1795807965.78" not in listener.channels
    assert CallLog.objects.get(pk=call.pk).state == "placed"


def test_unknown_events_over_the_socket_change_nothing(ari_events, fake_ari, make_call):
    call = make_call(ANSWERED)
    fake_ari.live_channels.add(ANSWERED)
    script = [channel_event("ChannelCreated", "1795807965.77", "Down", at("45.0")), *NOISE]
    script.append(destroyed("1795807965.77", 16, "Normal Clearing", at("46.0")))
    ari_events.scripts = [script]

    listen(heard(len(script)))

    assert outcome(call)[:2] == ("placed", None)


def test_socket_dropping_mid_call_reconnects_and_reconciles(ari_events, fake_ari, make_call, caplog):
    talking = make_call(ANSWERED)
    fake_ari.live_channels.update({ANSWERED, "still-ringing"})
    ringing = make_call("still-ringing")
    # The call goes on while no one listens: Asterisk forgets its channel (GET → 404).
    ari_events.before_drop = lambda: fake_ari.live_channels.discard(ANSWERED)
    ari_events.scripts = [[STATE_UP, DIAL_ANSWER, "drop"], []]
    caplog.set_level(logging.INFO, logger="telephony")

    def reconnected(listener):
        if listener.stats["messages"] >= 2:
            ari_events.drop_now.set()  # the listener has seen the answer: now the socket drops
        return listener.stats["connects"] >= 2 and listener.stats["reconciles"] >= 2

    listener = listen(reconnected)

    row = CallLog.objects.get(pk=talking.pk)
    assert (row.state, row.date_answered, row.client_outcome, row.hangup_cause, row.duration_sec) == (
        "ended",
        when("45.548"),
        "answered",
        None,
        None,  # when it ended is not known: no made-up duration
    )
    assert row.date_ended is not None and row.hangup_cause_name == "unknown"
    assert row.outcome == "talked"
    assert CallLog.objects.get(pk=ringing.pk).state == "placed"  # ARI still knows it: left alone
    assert listener.stats["reconciled"] == 1
    states = [
        r.getMessage()
        for r in caplog.records
        if r.name == "telephony.listener" and "telephony events: " in r.getMessage()
    ]
    assert any(message.startswith("telephony events: disconnected") for message in states)
    assert sum(message.startswith("telephony events: connected") for message in states) == 2


def test_a_placed_call_past_the_ring_timeout_is_reconciled_while_connected(
    ari_events, fake_ari, make_call, telephony_settings
):
    telephony_settings.ASTERISK_RING_TIMEOUT = 0
    call = make_call("lost-1")
    fake_ari.live_channels.add("lost-1")
    ari_events.scripts = [[]]

    def asterisk_forgets(listener):
        if listener.stats["reconciles"]:
            fake_ari.live_channels.discard("lost-1")  # after the first check: destroyed, event lost
        return listener.stats["reconciled"] >= 1

    listen(asterisk_forgets, ring_margin=0.0)

    row = CallLog.objects.get(pk=call.pk)
    assert (row.state, row.hangup_cause_name, row.outcome) == ("ended", "unknown", "unknown")


def test_wrong_credentials_are_logged_and_retried_with_backoff(ari_events, telephony_settings, caplog):
    telephony_settings.ASTERISK_ARI_PASSWORD = "not-the-pa55word"
    slept = []
    caplog.set_level(logging.INFO, logger="telephony")

    listener = listen(lambda listener: listener.stats["attempts"] >= 5, sleep=slept.append)

    assert listener.stats["connects"] == 0
    assert len(slept) >= 4
    for failures, delay in enumerate(slept[:4]):
        ceiling = min(0.1, 0.02 * 2**failures)
        assert ceiling / 2 <= delay <= ceiling  # exponential, capped, jittered
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "HTTP 401 (check ASTERISK_ARI_USERNAME and ASTERISK_ARI_PASSWORD)" in errors[0]
    assert "pa55word" not in " ".join(r.getMessage() for r in caplog.records)  # the password is never logged
    beat = EventListener.objects.get()
    assert beat.state == "stopped" and "HTTP 401" in beat.last_error


def test_the_heartbeat_row_says_connected_while_listening(ari_events, fake_ari):
    ari_events.scripts = [[]]
    seen = {}

    def connected_for_a_while(listener):
        row = EventListener.objects.filter(state="connected").first()
        if row:
            seen["row"] = row
        return listener.stats["connects"] and time.monotonic() - seen.setdefault("t", time.monotonic()) > 0.5

    listen(connected_for_a_while)

    row = seen["row"]
    assert (row.name, row.state) == (f"{fake_ari.server.host}:{fake_ari.server.port}", "connected")
    assert row.beat_at > row.state_since


@pytest.mark.parametrize(
    ("ari_url", "events_override", "expected"),
    [
        ("http://pbx:8088/ari", "", "ws://pbx:8088/ari/events?app=sales&subscribeAll=true"),
        ("https://pbx.example/ari", "", "wss://pbx.example/ari/events?app=sales&subscribeAll=true"),
        ("http://pbx:8088/ari", "wss://proxy/ari/events", "wss://proxy/ari/events?app=sales&subscribeAll=true"),
    ],
)
def test_the_websocket_url_is_derived_from_the_ari_url(telephony_settings, ari_url, events_override, expected):
    telephony_settings.ASTERISK_ARI_URL = ari_url
    telephony_settings.ASTERISK_ARI_EVENTS_URL = events_override
    telephony_settings.ASTERISK_ARI_APP = "sales"
    assert events_url(AriConfig.from_settings()) == expected


def with_channel(events: list[dict], old: str, new: str) -> list[dict]:
    return [json.loads(json.dumps(event).replace(f'"{old}', f'"{new}')) for event in events]


def test_end_to_end_clicks_through_the_api_get_their_outcomes_from_the_socket(api_as, ari_events, fake_ari):
    caller = api_as("communications.call_phone", "communications.view_communication")
    talked = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})
    unanswered = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+74951234567"})

    def click(communication) -> str:
        response = caller.post(
            f"/v2/communications/{communication.uuid}/call-phone", {"extension": "101"}, format="json"
        )
        assert response.status_code == 202 and response.json()["state"] == "placed"
        return response.json()["channel_id"]

    talked_channel, unanswered_channel = click(talked), click(unanswered)
    script = [
        *with_channel(TALKED[:3], ANSWERED, talked_channel),
        channel_event("ChannelCreated", unanswered_channel, "Down", at("45.548")),
        *with_channel(TALKED[3:], ANSWERED, talked_channel),
        *with_channel([NO_ANSWER], UNANSWERED, unanswered_channel),
    ]
    ari_events.scripts = [script]

    listen(heard(len(script)))

    first = caller.get(f"/v2/communications/{talked.uuid}/calls").json()
    assert [(c["channel_id"], c["state"], c["outcome"], c["duration_sec"]) for c in first] == [
        (talked_channel, "ended", "talked", 2)
    ]
    second = caller.get(f"/v2/communications/{unanswered.uuid}/calls").json()
    assert [(c["state"], c["outcome"], c["hangup_cause"], c["hangup_cause_txt"]) for c in second] == [
        ("ended", "agent_no_answer", 19, "User alerting, no answer")
    ]
    assert Communication.objects.get(pk=talked.pk).details == {
        "phone": "+79161234567",
        "call_id": talked_channel,
        "duration_sec": 2,
    }
    assert Communication.objects.get(pk=unanswered.pk).details == {
        "phone": "+74951234567",
        "call_id": unanswered_channel,
    }
    assert not CallLog.objects.filter(state="placed").exists()


def test_a_reconciliation_ari_could_not_answer_is_retried_while_connected(ari_events, fake_ari, make_call):
    call = make_call(ANSWERED, state="answered")  # answered calls are only checked on (re)connect
    fake_ari.channel_failures = 1
    ari_events.scripts = [[]]

    listener = listen(lambda listener: listener.stats["reconciled"] >= 1)

    assert listener.stats["reconciles"] == 1  # one connection, the check redone by the sweep
    assert CallLog.objects.get(pk=call.pk).state == "ended"
