"""GET /v2/communications/{uuid}/calls: what became of each click, for the CRM card."""

from datetime import timedelta

import pytest
from django.utils import timezone

from communications import services
from communications.models import Source
from communications.tests.factories import CommunicationFactory
from telephony.models import CallLog

pytestmark = pytest.mark.django_db
VIEW = "communications.view_communication"
CALL = "communications.call_phone"


@pytest.fixture
def communication(db):
    return CommunicationFactory(details={"phone": "+79161234567"})


def add_call(communication, channel_id: str, minutes_ago: int, **fields) -> CallLog:
    return CallLog.objects.create(
        communication=communication,
        channel_id=channel_id,
        extension="101",
        phone="+79161234567",
        date_requested=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def url(communication) -> str:
    return f"/v2/communications/{communication.uuid}/calls"


def test_calls_newest_first_with_their_outcomes(api_as, communication):
    ended = timezone.now() - timedelta(minutes=5)
    add_call(
        communication,
        "old",
        10,
        state="ended",
        client_outcome="busy",
        hangup_cause=17,
        hangup_cause_txt="User busy",
        date_answered=ended - timedelta(seconds=8),
        date_ended=ended,
        duration_sec=8,
    )
    add_call(communication, "new", 1, state="placed")
    add_call(CommunicationFactory(), "someone-elses", 0)

    response = api_as(VIEW, CALL).get(url(communication))

    assert response.status_code == 200
    old, new = response.json()[1], response.json()[0]
    assert [new["channel_id"], old["channel_id"]] == ["new", "old"]
    assert new["state"] == "placed" and new["outcome"] == "in_progress" and new["hangup_cause_name"] == ""
    assert {key: old[key] for key in old if key not in ("date_requested", "date_answered", "date_ended")} == {
        "channel_id": "old",
        "communication": str(communication.uuid),
        "extension": "101",
        "phone": "+79161234567",
        "state": "ended",
        "outcome": "client_busy",
        "client_outcome": "busy",
        "hangup_cause": 17,
        "hangup_cause_name": "busy",
        "hangup_cause_txt": "User busy",
        "duration_sec": 8,
        "error": "",
    }
    assert old["date_ended"] is not None and old["date_answered"] is not None


def test_the_phone_is_masked_for_users_who_cannot_place_calls(api_as, communication):
    add_call(communication, "c-1", 1, state="placed")
    viewer = api_as(VIEW).get(url(communication))
    caller = api_as(VIEW, CALL).get(url(communication))
    assert viewer.json()[0]["phone"] == "+7916*****67"
    assert caller.json()[0]["phone"] == "+79161234567"


def test_no_calls_is_an_empty_list(api_as, communication):
    response = api_as(VIEW).get(url(communication))
    assert (response.status_code, response.json()) == (200, [])


def test_needs_the_view_permission(api_as, communication):
    add_call(communication, "c-1", 1)
    response = api_as(CALL, "communications.change_communication").get(url(communication))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


def test_unknown_or_deleted_communication_is_404(api_as, communication):
    client = api_as(VIEW)
    assert client.get("/v2/communications/0190a0b0-0000-7000-8000-000000000000/calls").status_code == 404
    assert client.get("/v2/communications/not-a-uuid/calls").status_code == 404
    add_call(communication, "c-1", 1)
    services.communication_delete(uuid=communication.uuid, actor=None, source=Source.API)
    response = client.get(url(communication))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_unknown_query_parameters_are_400(api_as, communication):
    response = api_as(VIEW).get(url(communication) + "?page_size=5")
    assert response.status_code == 400


@pytest.mark.parametrize("calls", [1, 30])
def test_query_count_does_not_grow_with_the_calls(api_as, communication, django_assert_max_num_queries, calls):
    for number in range(calls):
        add_call(communication, f"c-{number}", number, state="ended", hangup_cause=16)
    client = api_as(VIEW)
    with django_assert_max_num_queries(6):  # token and user, permissions (2), communication, calls
        response = client.get(url(communication))
    assert len(response.json()) == calls


def test_at_most_100_calls_are_shown(api_as, communication):
    CallLog.objects.bulk_create(
        CallLog(
            communication=communication,
            channel_id=f"c-{number}",
            extension="101",
            phone="+79161234567",
            date_requested=timezone.now() - timedelta(seconds=number),
        )
        for number in range(105)
    )
    body = api_as(VIEW).get(url(communication)).json()
    assert len(body) == 100 and body[0]["channel_id"] == "c-0"
