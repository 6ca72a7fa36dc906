"""POST /v2/communications/{uuid}/call-phone against a fake ARI on 127.0.0.1."""

import base64
import socket
import threading
import time

import pytest

from communications.models import Communication, CommunicationHistory, Kind, Status
from communications.tests.factories import CommunicationFactory
from communications_project.models import IdempotencyKey
from telephony.models import CallLog

pytestmark = pytest.mark.django_db
PERMS = ("communications.call_phone", "communications.view_communication")


@pytest.fixture
def caller(api_as):
    return api_as(*PERMS)


def call(client, communication, body=None, **headers):
    return client.post(
        f"/v2/communications/{communication.uuid}/call-phone",
        {"extension": "101"} if body is None else body,
        format="json",
        **headers,
    )


def codes(response):
    return [(e["code"], e["attr"]) for e in response.json()["errors"]]


def unchanged(communication) -> bool:
    row = Communication.objects.get(pk=communication.pk)
    return (
        row.status == communication.status
        and row.version == communication.version
        and not CommunicationHistory.objects.filter(communication=communication).exists()
    )


def test_a_click_rings_the_agent_then_the_client(caller, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})

    response = call(caller, communication)

    assert response.status_code == 202
    body = response.json()
    assert (body["state"], body["extension"], body["phone"]) == ("placed", "101", "+79161234567")
    [request] = fake_ari.originates
    assert request.method == "POST" and request.path == "/ari/channels"
    assert request.args.to_dict() == {
        "endpoint": "PJSIP/101",
        "extension": "79161234567",
        "context": "from-crm",
        "priority": "1",
        "callerId": "CRM",
        "timeout": "30",
        "channelId": body["channel_id"],
    }
    assert request.get_json() == {"variables": {"COMMUNICATION_UUID": str(communication.uuid)}}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"crm:s3cret").decode()
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK  # placed is not answered, but the planned call has started
    assert row.details == {"phone": "+79161234567", "call_id": body["channel_id"]}
    sources = list(CommunicationHistory.objects.filter(communication=row).values_list("source", "action"))
    assert sources == [("telephony", "transition"), ("telephony", "update")]
    assert CallLog.objects.get().state == "placed"


def test_a_given_phone_overrides_the_details(caller, fake_ari):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    response = call(caller, communication, {"extension": "205", "phone": "+74951234567"})
    assert response.status_code == 202
    assert fake_ari.originates[0].args["extension"] == "74951234567"
    assert fake_ari.originates[0].args["endpoint"] == "PJSIP/205"
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK


def test_the_same_click_retried_with_a_key_rings_once(caller, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    first = call(caller, communication, HTTP_IDEMPOTENCY_KEY="click-1")
    second = call(caller, communication, HTTP_IDEMPOTENCY_KEY="click-1")
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json()
    assert len(fake_ari.originates) == 1
    assert CallLog.objects.count() == 1


def test_a_retry_after_a_lost_answer_gets_the_same_channel_and_asterisk_refuses_it(caller, fake_ari):
    """The first attempt reached Asterisk but its answer was lost (release the key by hand here):
    the retry carries the same channelId, and Asterisk's 409 keeps the phone from ringing twice."""
    communication = CommunicationFactory(kind=Kind.PLANNED)
    first = call(caller, communication, HTTP_IDEMPOTENCY_KEY="click-2")
    IdempotencyKey.objects.all().delete()
    second = call(caller, communication, HTTP_IDEMPOTENCY_KEY="click-2")
    assert second.status_code == 502
    assert "Channel with given unique ID already exists" in second.json()["errors"][0]["detail"]
    assert (
        fake_ari.originates[0].args["channelId"]
        == fake_ari.originates[1].args["channelId"]
        == first.json()["channel_id"]
    )


@pytest.mark.parametrize(
    ("factory_args", "expected"),
    [
        ({"method_code": "visit", "details": {}}, "Only an outbound call can be dialled."),
        ({"direction": "inbound"}, "Only an outbound call can be dialled."),
        ({"kind": Kind.ACTUAL, "status": Status.DONE}, "Cannot dial a communication that is done."),
        ({"kind": Kind.PLANNED, "status": Status.CANCELLED}, "Cannot dial a communication that is cancelled."),
    ],
)
def test_only_open_outbound_calls_can_be_dialled(caller, fake_ari, factory_args, expected):
    communication = CommunicationFactory(**factory_args)
    response = call(caller, communication)
    assert response.status_code == 409
    assert response.json()["errors"][0] == {"code": "transition_not_allowed", "detail": expected, "attr": None}
    assert fake_ari.originates == []
    assert not CallLog.objects.exists()


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"extension": "1a1"}, "extension"),
        ({"extension": ""}, "extension"),
        ({}, "extension"),
        ({"extension": "101", "phone": "89161234567"}, "phone"),
        ({"extension": "101", "phone": "+7916\x001234567"}, "phone"),
        ({"extension": "101", "ring": True}, "ring"),
    ],
)
def test_input_the_service_can_refuse_never_reaches_asterisk(caller, fake_ari, body, attr):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = call(caller, communication, body)
    assert response.status_code == 400
    assert attr in [e["attr"] for e in response.json()["errors"]]
    assert fake_ari.originates == []
    assert unchanged(communication)


def test_not_configured_is_503(caller, telephony_settings):
    telephony_settings.ASTERISK_ARI_URL = ""
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = call(caller, communication)
    assert response.status_code == 503
    assert codes(response) == [("telephony_not_configured", None)]
    assert unchanged(communication)
    log = CallLog.objects.get()
    assert log.state == "failed" and log.error.startswith("telephony_not_configured")


def test_connection_refused_is_503_and_logged(caller, telephony_settings, closed_port):
    telephony_settings.ASTERISK_ARI_URL = f"http://127.0.0.1:{closed_port}/ari"
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = call(caller, communication)
    assert response.status_code == 503
    assert codes(response) == [("telephony_unavailable", None)]
    assert unchanged(communication)
    log = CallLog.objects.get()
    assert log.state == "failed" and log.error.startswith("telephony_unavailable")


def test_read_timeout_returns_within_the_timeout_as_504(caller, hung_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    started = time.monotonic()
    response = call(caller, communication)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert codes(response) == [("telephony_unavailable", None)]
    assert elapsed < 0.5 + 2.0  # the read timeout and a margin for a busy machine (a hung server never answers)
    assert len(hung_ari.connections) == 1
    assert unchanged(communication)
    # It may have rung: left open for the events listener and its reconciliation to settle.
    log = CallLog.objects.get()
    assert log.state == "placed" and log.error.startswith("telephony_unavailable")


@pytest.mark.parametrize(
    ("settings_change", "status_reason"),
    [
        ({"ASTERISK_ENDPOINT_TEMPLATE": "DAHDI/{extension}"}, "Asterisk refused (500): Allocation failed"),
        ({"ASTERISK_ARI_PASSWORD": "wrong"}, "Asterisk refused (401): Authentication required"),
    ],
)
def test_asterisk_refusing_is_502_with_its_reason(caller, fake_ari, settings, settings_change, status_reason):
    for name, value in settings_change.items():
        setattr(settings, name, value)
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = call(caller, communication)
    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "telephony_rejected"
    assert response.json()["errors"][0]["detail"] == status_reason
    assert len(fake_ari.originates) == 1  # 5xx is not retried
    assert unchanged(communication)
    assert CallLog.objects.get().state == "failed"


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (400, {"message": "Endpoint must be specified"}),
        (404, {"message": "Resource not found"}),
        (409, {"message": "Channel with given unique ID already exists"}),
    ],
)
def test_other_ari_refusals_are_502(caller, fake_ari, httpserver, code, body):
    httpserver.clear_all_handlers()
    httpserver.expect_request("/ari/channels").respond_with_json(body, status=code)
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = call(caller, communication)
    assert response.status_code == 502
    assert response.json()["errors"][0]["detail"] == f"Asterisk refused ({code}): {body['message']}"
    assert unchanged(communication)


def test_breaker_opens_and_then_answers_without_a_network_call(caller, hung_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    for _ in range(3):
        assert call(caller, communication).status_code == 504
    assert len(hung_ari.connections) == 3

    started = time.monotonic()
    response = call(caller, communication)
    assert response.status_code == 503
    assert "not trying now" in response.json()["errors"][0]["detail"]
    assert time.monotonic() - started < 1.0  # no connect, no timeout to wait for
    time.sleep(0.1)
    assert len(hung_ari.connections) == 3  # no fourth connection
    # The three timed-out originates may have rung (left open); the refused fourth never did.
    assert CallLog.objects.filter(state="placed").count() == 3
    assert CallLog.objects.filter(state="failed").count() == 1
    assert unchanged(communication)


def test_placing_calls_needs_its_own_permission(api_as, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    everything_else = api_as(
        "communications.view_communication", "communications.change_communication", "communications.add_communication"
    )
    response = call(everything_else, communication)
    assert response.status_code == 403
    assert fake_ari.originates == []


def test_an_originate_that_reached_asterisk_is_never_sent_again(caller, telephony_settings):
    """Asterisk reads the request and the connection drops before any answer: the phone may ring,
    so urllib3's Retry (connect errors only) must not send it a second time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    received = []

    def hang_up_after_reading():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            received.append(connection.recv(65536))
            connection.close()

    threading.Thread(target=hang_up_after_reading, daemon=True).start()
    telephony_settings.ASTERISK_ARI_URL = f"http://127.0.0.1:{server.getsockname()[1]}/ari"
    communication = CommunicationFactory(kind=Kind.PLANNED)
    try:
        response = call(caller, communication)
    finally:
        server.close()
    assert response.status_code == 503
    assert codes(response) == [("telephony_unavailable", None)]
    assert len(received) == 1 and received[0].startswith(b"POST /ari/channels?")
    assert unchanged(communication)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_channel_reported_ended_before_the_originate_answers_stays_ended(fake_ari, httpserver):
    """The events listener may record the end (a channel that fails at once) before ARI's 200 reaches
    the web worker: the worker must not turn the ended call back into placed."""
    from django.db import connection

    from communications.tests.factories import UserFactory
    from telephony.services import call_event, call_place

    def ended_at_once(request):
        channel_id = request.args["channelId"]
        call_event(channel_id=channel_id, event="hangup", cause=34, cause_txt="Circuit/channel congestion")
        connection.close()  # this server thread's own connection
        return fake_ari._json(200, {"id": channel_id, "name": "Local/101@agents-00000000;1", "state": "Down"})

    httpserver.clear_all_handlers()
    httpserver.expect_request("/ari/channels", method="POST").respond_with_handler(ended_at_once)
    communication = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})

    log = call_place(uuid=communication.uuid, extension="101", phone=None, actor=UserFactory())

    assert (log.state, log.hangup_cause) == ("ended", 34)
    assert CallLog.objects.get().state == "ended"
