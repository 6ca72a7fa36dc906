"""Create, PATCH, transitions and delete through the API; authentication and permissions."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Communication, CommunicationHistory, Kind, Status

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db


def codes(response) -> list[tuple[str, str | None]]:
    return [(error["code"], error["attr"]) for error in response.json()["errors"]]


def new_call(**overrides) -> dict:
    body = {
        "method": "call",
        "kind": "planned",
        "direction": "outbound",
        "client_uuid": str(uuid.uuid4()),
        "subject": "Пригласить на тест-драйв",
        "details": {"phone": "+79161234567"},
        "date_planned_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
    }
    body.update(overrides)
    return body


def test_create_answers_201_with_location_and_the_communication(api):
    response = api.post("/v2/communications", new_call(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"http://testserver/v2/communications/{body['uuid']}"
    assert response["ETag"] == '"1"'
    assert (body["status"], body["kind"], body["created_by"], body["version"]) == (
        "created",
        "planned",
        api.user.username,
        1,
    )
    row = Communication.objects.get(uuid=body["uuid"])
    assert row.details == {"phone": "+79161234567"}
    assert CommunicationHistory.objects.filter(communication=row, action="create", source="api").count() == 1
    assert api.get(response["Location"]).status_code == 200


def test_create_actual_goes_straight_to_in_work(api):
    response = api.post("/v2/communications", new_call(kind="actual", date_planned_start=None), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "in_work" and response.json()["date_start"] is not None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"method": "post", "details": {}}, [("method_inactive", "method")]),
        ({"method": "fax"}, [("invalid_choice", "method")]),
        ({"kind": "maybe"}, [("invalid_choice", "kind")]),
        ({"client_uuid": "123"}, [("invalid", "client_uuid")]),
        ({"client_uuid": None}, [("null", "client_uuid")]),
        ({"details": {}}, [("required", "details.phone")]),
        ({"details": {"phone": "+79161234567", "color": "red"}}, [("unknown_key", "details.color")]),
        ({"details": "phone"}, [("invalid", "details")]),
        ({"subject": "x" * 256}, [("max_length", "subject")]),
        ({"subject": "a\x00b"}, [("null_characters_not_allowed", "subject")]),
        ({"details": {"phone": "+7916\x001234567"}}, [("null_characters_not_allowed", "details.phone")]),
        ({"date_planned_start": "tomorrow"}, [("invalid", "date_planned_start")]),
        ({"date_planned_start": None}, [("required", "date_planned_start")]),
        ({"date_planned_start": "0001-01-01T00:00:00+05:00"}, [("out_of_range", "date_planned_start")]),
        ({"date_planned_start": "3000-01-01T00:00:00+00:00"}, [("out_of_range", "date_planned_start")]),
        ({"date_planned_start": "1899-12-31T23:59:59-05:00"}, [("out_of_range", "date_planned_start")]),
        # RFC 3339 only: an offset, seconds, `T`; a real date.
        ({"date_planned_start": "2099-06-01T10:00:00"}, [("invalid", "date_planned_start")]),
        ({"date_planned_start": "2099-06-01 10:00:00+03:00"}, [("invalid", "date_planned_start")]),
        ({"date_planned_start": "2099-06-01"}, [("invalid", "date_planned_start")]),
        ({"date_planned_start": "2099-02-30T10:00:00Z"}, [("invalid", "date_planned_start")]),
        ({"date_planned_start": 4102444800}, [("invalid", "date_planned_start")]),
        ({"status": "done"}, [("unknown_field", "status")]),
    ],
)
def test_create_refuses_bad_input_with_a_clear_error(api, overrides, expected):
    response = api.post("/v2/communications", new_call(**overrides), format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert codes(response) == expected
    assert not Communication.objects.exists()


def test_malformed_json_is_400_parse_error(api):
    response = api.post("/v2/communications", data='{"method": "call",', content_type="application/json")
    assert response.status_code == 400
    assert codes(response) == [("parse_error", None)]


@pytest.mark.parametrize(
    "fragment",
    [
        '"\\ud800": 1',  # an unknown key: its name would be echoed as the error's attr
        '"details": {"phone": "+79161234567", "\\udfff": 1}',
        '"subject": "\\ud800"',
    ],
)
def test_a_lone_surrogate_escape_anywhere_is_400_parse_error(api, fragment):
    body = json.dumps(new_call())[:-1] + ", " + fragment + "}"
    response = api.post("/v2/communications", data=body, content_type="application/json")
    assert response.status_code == 400
    assert codes(response) == [("parse_error", None)]
    assert not Communication.objects.exists()


def test_a_surrogate_pair_is_a_character_like_any_other(api):
    body = json.dumps(new_call(subject="🚗"))  # json.dumps writes it as \\ud83d\\ude97
    response = api.post("/v2/communications", data=body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Communication.objects.get().subject == "🚗"


def test_a_json_array_body_is_400(api):
    response = api.post("/v2/communications", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400


def test_not_json_is_415(api):
    response = api.post("/v2/communications", data="method=call", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert codes(response) == [("unsupported_media_type", None)]


def test_huge_body_is_refused_without_a_500(api):
    body = json.dumps(new_call(comment="x" * 3_000_000))
    response = api.post("/v2/communications", data=body, content_type="application/json")
    assert response.status_code == 413
    assert codes(response) == [("request_too_large", None)]
    assert not Communication.objects.exists()


def test_patch_changes_only_given_fields(api):
    communication = CommunicationFactory(comment="Перезвонить после 18:00")
    response = api.patch(f"/v2/communications/{communication.uuid}", {"subject": "Новая тема"}, format="json")
    assert response.status_code == 200
    assert (response.json()["subject"], response.json()["comment"]) == ("Новая тема", "Перезвонить после 18:00")
    assert response["ETag"] == '"2"'


def test_patch_with_stale_if_match_is_412_and_changes_nothing(api):
    communication = CommunicationFactory()
    response = api.patch(
        f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json", HTTP_IF_MATCH='"5"'
    )
    assert response.status_code == 412
    assert codes(response) == [("precondition_failed", None)]
    assert Communication.objects.get(pk=communication.pk).subject == "Test drive"


def test_patch_with_current_if_match_succeeds(api):
    communication = CommunicationFactory()
    response = api.patch(
        f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200


def test_patch_on_a_final_communication_is_409(api):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    response = api.patch(f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json")
    assert response.status_code == 409
    assert codes(response) == [("transition_not_allowed", None)]


def test_patch_refuses_read_only_fields(api):
    communication = CommunicationFactory()
    response = api.patch(f"/v2/communications/{communication.uuid}", {"status": "done"}, format="json")
    assert response.status_code == 400 and codes(response) == [("unknown_field", "status")]


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "extra"),
    [
        ("start", "patch", {}, "in_work", {}),
        ("close", "patch", {"result": "Договорились"}, "done", {"result": "Договорились"}),
        ("failed", "patch", {"fail_reason": "no_answer"}, "failed", {"fail_reason": "no_answer", "is_failed": True}),
        (
            "cancel",
            "post",
            {"cancel_reason": "Перенос"},
            "cancelled",
            {"cancel_reason": "Перенос", "is_cancelled": True},
        ),
    ],
)
def test_transition_endpoints(api, path, method, body, status, extra):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = getattr(api, method)(f"/v2/communications/{communication.uuid}/{path}", body, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == status
    for key, value in extra.items():
        assert response.json()[key] == value
    assert CommunicationHistory.objects.filter(communication=communication, action="transition").count() == 1


def test_refused_transition_is_409_naming_the_status(api):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    response = api.post(f"/v2/communications/{communication.uuid}/cancel", {}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0] == {
        "code": "transition_not_allowed",
        "detail": "Cannot cancel: the communication is actual and in_work.",
        "attr": None,
    }


def test_failed_without_a_reason_is_400(api):
    communication = CommunicationFactory()
    response = api.patch(f"/v2/communications/{communication.uuid}/failed", {}, format="json")
    assert response.status_code == 400 and codes(response) == [("required", "fail_reason")]


def test_transition_with_stale_if_match_is_412(api):
    communication = CommunicationFactory()
    response = api.patch(f"/v2/communications/{communication.uuid}/close", {}, format="json", HTTP_IF_MATCH='"9"')
    assert response.status_code == 412
    assert Communication.objects.get(pk=communication.pk).status == Status.CREATED


def test_delete_is_soft_and_then_404(api):
    communication = CommunicationFactory()
    response = api.delete(f"/v2/communications/{communication.uuid}")
    assert response.status_code == 204
    assert api.get(f"/v2/communications/{communication.uuid}").status_code == 404
    assert api.delete(f"/v2/communications/{communication.uuid}").status_code == 404
    assert Communication.objects.deleted().filter(pk=communication.pk).exists()


ENDPOINTS = [
    ("get", "/v2/communications/{uuid}", "view"),
    ("get", "/v3/communications", "view"),
    ("post", "/v3/collections/communications", "view"),
    ("get", "/v2/communications/{uuid}/primary-info", "view"),
    ("get", "/v2/communications/{uuid}/history", "view"),
    ("post", "/v2/communications", "add"),
    ("patch", "/v2/communications/{uuid}", "change"),
    ("patch", "/v2/communications/{uuid}/start", "change"),
    ("patch", "/v2/communications/{uuid}/close", "change"),
    ("patch", "/v2/communications/{uuid}/failed", "change"),
    ("post", "/v2/communications/{uuid}/cancel", "change"),
    ("delete", "/v2/communications/{uuid}", "delete"),
]


@pytest.mark.parametrize(("method", "url", "perm"), ENDPOINTS)
def test_every_endpoint_needs_authentication(method, url, perm):
    communication = CommunicationFactory()
    response = getattr(APIClient(), method)(url.format(uuid=communication.uuid), {}, format="json")
    assert response.status_code == 401
    assert codes(response) == [("not_authenticated", None)]


@pytest.mark.parametrize(("method", "url", "perm"), ENDPOINTS)
def test_every_endpoint_needs_its_permission(api_as, method, url, perm):
    communication = CommunicationFactory()
    others = [p for p in ("view", "add", "change", "delete") if p != perm]
    client = api_as(*(f"communications.{p}_communication" for p in others))
    response = getattr(client, method)(url.format(uuid=communication.uuid), {}, format="json")
    assert response.status_code == 403
    assert codes(response) == [("permission_denied", None)]
    assert Communication.objects.get(pk=communication.pk).version == 1


def test_dictionaries_need_only_authentication(api_as):
    client = api_as()
    assert client.get("/v2/dicts/communications-methods").status_code == 200
    assert client.get("/v2/dicts/communications-statuses").status_code == 200
    assert APIClient().get("/v2/dicts/communications-statuses").status_code == 401


def test_api_error_details_are_english_even_for_a_russian_browser():
    response = APIClient().get("/v3/communications", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.json()["errors"][0]["detail"] == "Authentication credentials were not provided."


def test_unknown_url_is_404_in_the_standard_shape(api):
    response = api.get("/v2/nothing-here")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_session_authentication_works_for_staff(client, admin_user):
    client.force_login(admin_user)
    communication = CommunicationFactory()
    assert client.get(f"/v2/communications/{communication.uuid}").status_code == 200
