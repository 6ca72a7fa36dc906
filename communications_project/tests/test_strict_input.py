"""Every write endpoint and the collections refuse a value of the wrong JSON type: 400, nothing stored.

DRF alone turns `false` into the nil UUID and `1.5` into the string "1.5";
`communications_project.api.StrictSerializer` refuses them. The table below names each endpoint's
fields with what they accept; the test sends every bad value to every field.
"""

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Communication, CommunicationHistory, Kind
from communications.tests.factories import CommunicationFactory, UserFactory
from communications_project.models import IdempotencyKey
from id_translations.models import IdTranslation
from telephony.models import CallLog

pytestmark = pytest.mark.django_db

SECRET = "pbx-shared-secret"
NOT_A_STRING = [True, False, 0, 1.5, [], {}]
NOT_AN_INTEGER = [True, False, 1.5, "1", "", [], {}]
NOT_A_LIST = [True, False, 0, 1.5, "x", {}]


def _future() -> str:
    return (timezone.now() + dt.timedelta(days=1)).isoformat()


def _past() -> str:
    return (timezone.now() - dt.timedelta(minutes=5)).isoformat()


# A field: (name, bad values, code for null or None if null is accepted, code for "" or None if
# "" is accepted or already among the bad values).
def string(name: str, *, null: str | None = "null", blank: str | None = "blank"):
    return (name, NOT_A_STRING, null, blank)


def uuid_field(name: str, *, null: str | None = "null"):
    return (name, NOT_A_STRING, null, "invalid")


def choice(name: str, *, null: str | None = "null"):
    return (name, NOT_A_STRING, null, "invalid_choice")


def date_time(name: str, *, null: str | None = "null"):
    return (name, NOT_A_STRING, null, "invalid")


def integer(name: str, *, null: str | None = "null", bad=NOT_AN_INTEGER):
    return (name, bad, null, None)


# (name, method, url, a valid body, its fields)
ENDPOINTS = [
    (
        "create",
        "post",
        "/v2/communications",
        lambda: {
            "method": "call",
            "kind": "planned",
            "direction": "outbound",
            "client_uuid": str(uuid.uuid4()),
            "details": {"phone": "+79161234567"},
            "date_planned_start": _future(),
        },
        [
            string("method"),
            choice("kind"),
            choice("direction"),
            uuid_field("client_uuid"),
            uuid_field("employee_uuid", null=None),
            uuid_field("dealer_uuid", null=None),
            string("subject", blank=None),
            string("comment", blank=None),
            string("result", blank=None),
            date_time("date_planned_start", null=None),
            date_time("date_planned_finish", null=None),
            date_time("date_start", null=None),
        ],
    ),
    (
        "update",
        "patch",
        "/v2/communications/{uuid}",
        lambda: {"subject": "Changed"},
        [
            uuid_field("client_uuid"),
            uuid_field("employee_uuid", null=None),
            uuid_field("dealer_uuid", null=None),
            string("subject", blank=None),
            string("comment", blank=None),
            string("result", blank=None),
            date_time("date_planned_start"),
            date_time("date_planned_finish", null=None),
        ],
    ),
    ("start", "patch", "/v2/communications/{uuid}/start", lambda: {}, [date_time("date_start")]),
    (
        "close",
        "patch",
        "/v2/communications/{uuid}/close",
        lambda: {},
        [date_time("date_finish"), string("result", blank=None)],
    ),
    (
        "failed",
        "patch",
        "/v2/communications/{uuid}/failed",
        lambda: {"fail_reason": "no_answer"},
        [choice("fail_reason"), string("comment", blank=None)],
    ),
    ("cancel", "post", "/v2/communications/{uuid}/cancel", lambda: {}, [string("cancel_reason", blank=None)]),
    (
        "collection",
        "post",
        "/v3/collections/communications",
        lambda: {"uuids": [str(uuid.uuid4())]},
        [("uuids", NOT_A_LIST, "null", None), choice("view")],
    ),
    (
        "id-translation",
        "post",
        "/v1/communications/id-translations",
        lambda: {"flora_uuid": str(uuid.uuid4()), "oracle_id": 7},
        [uuid_field("flora_uuid"), integer("oracle_id")],
    ),
    (
        "call-phone",
        "post",
        "/v2/communications/{uuid}/call-phone",
        lambda: {"extension": "101"},
        [string("extension"), string("phone")],
    ),
    (
        "telephony-event",
        "post",
        "/v2/telephony/events",
        lambda: {"channel_id": "chan-1", "event": "answered"},
        [
            string("channel_id"),
            string("event"),
            # The PBX may send numbers as strings; booleans and fractions are still refused.
            integer("cause", null=None, bad=[True, False, 1.5, "x", [], {}]),
            integer("duration_sec", null=None, bad=[True, False, 1.5, "x", [], {}]),
        ],
    ),
]


def _cases():
    for name, method, url, body, fields in ENDPOINTS:
        for field, bad_values, null_code, blank_code in fields:
            cases = [(value, "invalid") for value in bad_values]
            if null_code:
                cases.append((None, null_code))
            if blank_code and "" not in bad_values:
                cases.append(("", blank_code))
            for value, code in cases:
                yield pytest.param(method, url, body, field, value, code, id=f"{name}-{field}={value!r}")


def _stored() -> tuple:
    return (
        Communication.all_objects.count() if hasattr(Communication, "all_objects") else Communication.objects.count(),
        CommunicationHistory.objects.count(),
        IdTranslation.objects.count(),
        CallLog.objects.count(),
        IdempotencyKey.objects.count(),
        tuple(Communication.objects.order_by("pk").values_list("version", flat=True)),
    )


@pytest.fixture
def client(settings):
    """A superuser; on the PBX's endpoint, the PBX with its secret."""
    settings.TELEPHONY_EVENTS_SECRET = SECRET
    user = UserFactory(username="root", is_superuser=True)

    class Client(APIClient):
        def generic(self, method, path, *args, **kwargs):
            if path.startswith("/v2/telephony/events"):
                self.force_authenticate(None)
                self.credentials(HTTP_X_TELEPHONY_SECRET=SECRET)
            else:
                self.force_authenticate(user)
            return super().generic(method, path, *args, **kwargs)

    return Client()


@pytest.mark.parametrize(("method", "url", "body", "field", "value", "code"), list(_cases()))
def test_a_value_of_the_wrong_type_is_400_and_stores_nothing(client, method, url, body, field, value, code):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    CallLog.objects.create(
        communication=communication,
        channel_id="chan-1",
        extension="101",
        phone="+79161234567",
        state="placed",
        date_requested=timezone.now(),
    )
    before = _stored()
    response = getattr(client, method)(
        url.format(uuid=communication.uuid),
        {**body(), field: value},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert response.status_code == 400, response.content
    errors = [(error["code"], error["attr"]) for error in response.json()["errors"]]
    assert errors == [(code, field)]
    assert _stored() == before


@pytest.mark.parametrize(
    ("method", "url", "body", "attr"),
    [
        ("post", "/v3/collections/communications", {"uuids": [False]}, "uuids.0"),
        ("post", "/v3/collections/communications", {"uuids": [str(uuid.uuid4()), 0]}, "uuids.1"),
        (
            "post",
            "/v1/communications/id-translations",
            [{"flora_uuid": str(uuid.uuid4()), "oracle_id": 1}, {"flora_uuid": False, "oracle_id": 2}],
            "1.flora_uuid",
        ),
        (
            "post",
            "/v1/communications/id-translations",
            [{"flora_uuid": str(uuid.uuid4()), "oracle_id": 1}, {"flora_uuid": str(uuid.uuid4()), "oracle_id": True}],
            "1.oracle_id",
        ),
    ],
)
def test_wrong_types_inside_lists_are_refused_too(client, method, url, body, attr):
    before = _stored()
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == 400
    assert [(error["code"], error["attr"]) for error in response.json()["errors"]] == [("invalid", attr)]
    assert _stored() == before


def test_false_never_becomes_the_nil_uuid(client):
    response = client.post("/v1/communications/id-translations", [{"flora_uuid": False, "oracle_id": 1}], format="json")
    assert response.status_code == 400
    assert not IdTranslation.objects.filter(flora_uuid=uuid.UUID(int=0)).exists()


def test_the_pbx_may_still_send_numbers_as_strings(client):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    CallLog.objects.create(
        communication=communication,
        channel_id="chan-9",
        extension="101",
        phone="+79161234567",
        state="placed",
        date_requested=timezone.now(),
    )
    response = client.post(
        "/v2/telephony/events",
        {"channel_id": "chan-9", "event": "hangup", "cause": "16", "duration_sec": "42"},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert CallLog.objects.get(channel_id="chan-9").duration_sec == 42
