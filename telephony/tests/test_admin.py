"""Telephony's part of the communication's admin page: the Call button and the call log."""

import re

import pytest
from django.urls import reverse

from communications.models import Communication, Direction, Kind, Status
from communications.tests.factories import CommunicationFactory, UserFactory
from telephony.admin import EXTENSION_COOKIE
from telephony.models import CallLog, CallState

pytestmark = pytest.mark.django_db
ATTEMPT = "7d4c1f0e-2b1a-4c6e-9f3a-0a1b2c3d4e5f"


def change_url(communication) -> str:
    return reverse("admin:communications_communication_change", args=[communication.pk])


def call_url(communication) -> str:
    return reverse("admin:communications_communication_call", args=[communication.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def press_call(client, communication, extension="314", attempt=ATTEMPT, **extra):
    data = {"call-extension": extension, "call-phone": "", "call-attempt": attempt, **extra}
    return client.post(call_url(communication), data, follow=True)


@pytest.fixture
def operator(client, admin_user):
    client.force_login(admin_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def shows_call_button(client, communication) -> bool:
    return 'id="call-button"' in client.get(change_url(communication)).content.decode()


def test_call_button_shows_for_an_open_outbound_call_when_telephony_is_configured(operator, fake_ari):
    assert shows_call_button(operator, CommunicationFactory(kind=Kind.PLANNED))
    assert shows_call_button(operator, CommunicationFactory(kind=Kind.ACTUAL))
    assert not shows_call_button(operator, CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE))
    assert not shows_call_button(operator, CommunicationFactory(direction=Direction.INBOUND))
    assert not shows_call_button(operator, CommunicationFactory(method_code="sms"))


def test_no_call_button_when_telephony_is_not_configured(operator, settings):
    settings.ASTERISK_ARI_URL = ""
    assert not shows_call_button(operator, CommunicationFactory(kind=Kind.PLANNED))


def test_no_call_button_without_the_permission_to_call(client, fake_ari, user_with_perms):
    client.force_login(
        user_with_perms("communications.view_communication", "communications.change_communication", is_staff=True)
    )
    communication = CommunicationFactory(kind=Kind.PLANNED)
    assert not shows_call_button(client, communication)
    assert client.post(call_url(communication), {"call-extension": "314"}).status_code == 403
    assert fake_ari.originates == []


def test_pressing_call_places_the_call_through_the_service_and_remembers_the_extension(operator, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})

    response = press_call(operator, communication)

    assert messages_of(response) == ["Call placed: your phone 314 rings first, then +79161234567 is dialled."]
    [request] = fake_ari.originates
    assert (request.args["endpoint"], request.args["extension"]) == ("PJSIP/314", "79161234567")
    call = CallLog.objects.get(communication=communication)
    assert (call.state, call.extension, call.requested_by.username) == (CallState.PLACED, "314", "root")
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK  # a planned one starts
    assert response.redirect_chain[-1][0] == change_url(communication)
    assert operator.cookies[EXTENSION_COOKIE].value == "314"
    body = response.content.decode()
    calls = body[body.index('id="calls-group"') : body.index('id="history-group"')]
    assert "314" in calls and '<span class="badge call-placed">ringing</span>' in calls
    # Next time the extension is filled in.
    assert re.search(r'name="call-extension" value="314"', body)


def test_a_double_click_rings_once(operator, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    press_call(operator, communication)
    second = press_call(operator, communication)  # the same rendered button: the same attempt
    assert len({r.args["channelId"] for r in fake_ari.originates}) == 1
    assert messages_of(second)[0].startswith("Asterisk refused the call:")


def test_asterisks_refusal_is_shown_and_nothing_changes(operator, fake_ari, settings):
    settings.ASTERISK_ENDPOINT_TEMPLATE = "Bogus/{extension}"
    communication = CommunicationFactory(kind=Kind.PLANNED)

    response = press_call(operator, communication)

    [message] = messages_of(response)
    assert message.startswith("Asterisk refused the call:") and "Allocation failed" in message
    assert Communication.objects.get(pk=communication.pk).status == Status.CREATED
    call = CallLog.objects.get(communication=communication)
    assert call.state == CallState.FAILED and "Allocation failed" in call.error
    assert operator.cookies[EXTENSION_COOKIE].value == "314"  # the desk phone is still the desk phone


def test_an_unreachable_pbx_is_shown(operator, telephony_settings, closed_port):
    telephony_settings.ASTERISK_ARI_URL = f"http://127.0.0.1:{closed_port}/ari"
    communication = CommunicationFactory(kind=Kind.PLANNED)
    [message] = messages_of(press_call(operator, communication))
    assert message.startswith("The PBX cannot be reached, nothing rang:")
    assert Communication.objects.get(pk=communication.pk).status == Status.CREATED


def test_a_bad_extension_never_reaches_asterisk(operator, fake_ari):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    [message] = messages_of(press_call(operator, communication, extension="31a"))
    assert message == "The call was not placed: Your extension: Digits only, 2 to 15."
    assert fake_ari.originates == [] and not CallLog.objects.exists()


def test_calling_a_closed_communication_is_refused(operator, fake_ari):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    [message] = messages_of(press_call(operator, communication))
    assert message.startswith("The call was not placed:")
    assert fake_ari.originates == []


def test_the_call_log_inline_shows_every_attempt(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    CallLog.objects.create(
        communication=communication,
        channel_id="chan-9",
        extension="314",
        phone="+79161234567",
        state=CallState.ENDED,
        hangup_cause=17,
        duration_sec=0,
        requested_by=UserFactory(username="olga"),
        date_requested=communication.date_created,
    )
    CallLog.objects.create(
        communication=communication,
        channel_id="chan-8",
        extension="314",
        phone="+79161234567",
        state=CallState.FAILED,
        error="telephony_rejected: Asterisk refused (500): Allocation failed",
        date_requested=communication.date_created,
    )
    body = operator.get(change_url(communication)).content.decode()
    calls = body[body.index('id="calls-group"') : body.index('id="history-group"')]
    assert "17 (busy)" in calls and "olga" in calls and "Allocation failed" in calls
    assert "Employee busy" in calls and "Not placed" in calls  # the outcome, in words
    assert calls.count('class="form-row"') == 2
    assert 'class="original"' not in calls


def test_an_operator_sees_the_calls_and_the_call_button(client, fake_ari):
    from django.contrib.auth.models import Group

    user = UserFactory(username="olga", is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    client.force_login(user)
    communication = CommunicationFactory(kind=Kind.PLANNED)

    body = client.get(change_url(communication)).content.decode()

    assert 'id="calls-group"' in body and 'id="call-button"' in body


def test_the_events_listeners_heartbeat_is_readable_and_read_only(operator):
    from django.utils import timezone

    from telephony.models import EventListener

    now = timezone.now()
    listener = EventListener.objects.create(
        name="pbx:8088", host="crm-1", pid=4242, state="connected", state_since=now, beat_at=now
    )
    body = operator.get(reverse("admin:telephony_eventlistener_changelist")).content.decode()
    assert "pbx:8088" in body and "Connected" in body
    change = operator.get(reverse("admin:telephony_eventlistener_change", args=[listener.pk])).content.decode()
    assert 'name="state"' not in change
