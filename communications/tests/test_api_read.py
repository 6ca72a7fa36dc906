"""GET one, list, collections, primary-info, history, dictionaries."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from communications import services
from communications.models import Kind, Source, Status
from conftest import AUTH_QUERIES

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db


def error_codes(response) -> list[tuple[str, str | None]]:
    return [(error["code"], error["attr"]) for error in response.json()["errors"]]


def test_get_one_full_view(api):
    communication = CommunicationFactory(kind=Kind.PLANNED, subject="Запись на ТО")
    response = api.get(f"/v2/communications/{communication.uuid}")
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["uuid"] == str(communication.uuid)
    assert (body["method"], body["kind"], body["status"], body["subject"]) == (
        "call",
        "planned",
        "created",
        "Запись на ТО",
    )
    assert body["details"] == {"phone": "+79161234567"}
    assert (body["is_cancelled"], body["is_failed"], body["version"]) == (False, False, 1)
    assert "history" not in body


def test_get_one_short_view_has_fewer_fields(api):
    communication = CommunicationFactory()
    body = api.get(f"/v2/communications/{communication.uuid}", {"view": "short"}).json()
    assert body["uuid"] == str(communication.uuid)
    assert "details" not in body and "comment" not in body and "version" not in body


def test_get_one_with_history(api, django_assert_max_num_queries):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    services.communication_transition(uuid=communication.uuid, name="start", actor=api.user, source=Source.API)
    with django_assert_max_num_queries(2 + AUTH_QUERIES):
        response = api.get(f"/v2/communications/{communication.uuid}", {"include": "history"})
    history = response.json()["history"]
    assert [(h["action"], h["status_from"], h["status_to"], h["actor"]) for h in history] == [
        ("transition", "created", "in_work", api.user.username)
    ]


def test_get_one_costs_at_most_two_queries(api, django_assert_num_queries):
    communication = CommunicationFactory()
    with django_assert_num_queries(1 + AUTH_QUERIES):
        assert api.get(f"/v2/communications/{communication.uuid}").status_code == 200


@pytest.mark.parametrize("uuid_value", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_get_unknown_is_404_in_the_standard_shape(api, uuid_value):
    response = api.get(f"/v2/communications/{uuid_value}")
    assert response.status_code == 404
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Communication not found.", "attr": None}],
    }


def test_deleted_communication_is_404(api):
    communication = CommunicationFactory()
    services.communication_delete(uuid=communication.uuid, actor=None, source=Source.API)
    assert api.get(f"/v2/communications/{communication.uuid}").status_code == 404


def test_bad_view_parameter_is_400(api):
    communication = CommunicationFactory()
    response = api.get(f"/v2/communications/{communication.uuid}", {"view": "huge"})
    assert response.status_code == 400
    assert error_codes(response) == [("invalid_choice", "view")]


def test_list_filters_by_every_field(api):
    dealer = uuid.uuid4()
    wanted = CommunicationFactory(kind=Kind.ACTUAL, direction="inbound", method_code="sms", dealer_uuid=dealer)
    CommunicationFactory(kind=Kind.PLANNED, dealer_uuid=dealer)
    CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    cases = [
        {"kind": "actual", "dealer_uuid": str(dealer)},
        {"method": "sms,visit"},
        {"status": ["in_work"], "direction": "inbound"},
        {"client_uuid": f"{wanted.client_uuid},{uuid.uuid4()}"},
        {"employee_uuid": [str(wanted.employee_uuid), str(uuid.uuid4())]},
    ]
    for params in cases:
        response = api.get("/v3/communications", params)
        assert response.status_code == 200, params
        assert [c["uuid"] for c in response.json()["results"]] == [str(wanted.uuid)], params


def test_list_repeated_values_are_ored(api):
    a = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    b = CommunicationFactory(kind=Kind.ACTUAL, status=Status.FAILED)
    CommunicationFactory(kind=Kind.PLANNED)
    response = api.get("/v3/communications?status=done&status=failed")
    assert {c["uuid"] for c in response.json()["results"]} == {str(a.uuid), str(b.uuid)}


def test_list_date_ranges_and_delta_sync(api):
    now = timezone.now()
    old = CommunicationFactory(date_created=now - dt.timedelta(days=10))
    new = CommunicationFactory(date_created=now - dt.timedelta(hours=1))
    after = (now - dt.timedelta(days=1)).isoformat()
    created = api.get("/v3/communications", {"date_created_after": after}).json()["results"]
    before = api.get("/v3/communications", {"date_created_before": after}).json()["results"]
    updated = api.get("/v3/communications", {"date_updated_after": after}).json()["results"]
    assert [c["uuid"] for c in created] == [str(new.uuid)]
    assert [c["uuid"] for c in before] == [str(old.uuid)]
    assert [c["uuid"] for c in updated] == [str(new.uuid)]


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"status": "closed"}, "status"),
        ({"status": "done,bogus"}, "status"),
        ({"method": "fax"}, "method"),
        ({"kind": "both"}, "kind"),
        ({"client_uuid": "123"}, "client_uuid"),
        ({"date_created_after": "yesterday"}, "date_created_after"),
        ({"date_finish_after": "0984-04-25T22:22:32+23:06"}, "date_finish_after"),
        ({"date_updated_after": "0001-01-01T00:00:00+01:00"}, "date_updated_after"),
        ({"ordering": "subject"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "²"}, "page_size"),
        ({"stauts": "done"}, "stauts"),
        ({"count": "yes"}, "count"),
    ],
)
def test_list_unknown_filter_value_is_400(api, params, attr):
    response = api.get("/v3/communications", params)
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert [error["attr"] for error in response.json()["errors"]] == [attr]


def test_list_cursor_pagination_walks_every_row_once(api):
    created = CommunicationFactory.create_batch(7)
    seen, url, pages = [], "/v3/communications?page_size=3", 0
    while url:
        body = api.get(url).json()
        assert "count" not in body
        seen += [c["uuid"] for c in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert sorted(seen) == sorted(str(c.uuid) for c in created)
    assert seen == [str(c.uuid) for c in sorted(created, key=lambda c: (c.date_created, c.uuid), reverse=True)]


def test_list_ordering_by_planned_start_ascending(api):
    now = timezone.now()
    late = CommunicationFactory(kind=Kind.PLANNED, date_planned_start=now + dt.timedelta(days=3))
    early = CommunicationFactory(kind=Kind.PLANNED, date_planned_start=now + dt.timedelta(days=1))
    CommunicationFactory(kind=Kind.ACTUAL)
    body = api.get("/v3/communications", {"ordering": "date_planned_start"}).json()
    assert [c["uuid"] for c in body["results"]] == [str(early.uuid), str(late.uuid)]


def test_list_count_only_when_asked(api):
    CommunicationFactory.create_batch(3)
    body = api.get("/v3/communications", {"count": "true", "page_size": 1}).json()
    assert body["count"] == 3 and len(body["results"]) == 1


@pytest.mark.parametrize("page_size", [5, 500])
def test_list_page_costs_one_query_whatever_the_size(api, django_assert_num_queries, page_size):
    CommunicationFactory.create_batch(20)
    api.get("/v3/communications", {"method": "call"})  # the process now keeps the methods dictionary
    with django_assert_num_queries(1 + AUTH_QUERIES):  # the page
        response = api.get("/v3/communications", {"page_size": page_size, "view": "full", "method": "call"})
    assert len(response.json()["results"]) == min(20, page_size)


def test_collection_keeps_request_order_and_lists_not_found(api, django_assert_max_num_queries):
    a, b = CommunicationFactory(), CommunicationFactory()
    missing = uuid.uuid4()
    with django_assert_max_num_queries(1 + AUTH_QUERIES):
        response = api.post(
            "/v3/collections/communications",
            {"uuids": [str(b.uuid), str(missing), str(a.uuid), str(b.uuid)], "view": "full"},
            format="json",
        )
    assert response.status_code == 200
    body = response.json()
    assert [c["uuid"] for c in body["results"]] == [str(b.uuid), str(a.uuid)]
    assert body["results"][0]["details"] == {"phone": "+79161234567"}
    assert body["not_found"] == [str(missing)]


def test_collection_of_a_thousand_in_two_queries(api, django_assert_max_num_queries):
    found = CommunicationFactory.create_batch(10)
    uuids = [str(c.uuid) for c in found] + [str(uuid.uuid4()) for _ in range(990)]
    with django_assert_max_num_queries(1 + AUTH_QUERIES):
        response = api.post("/v3/collections/communications", {"uuids": uuids}, format="json")
    assert len(response.json()["results"]) == 10 and len(response.json()["not_found"]) == 990


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"uuids": []}, "uuids"),
        ({"uuids": ["nope"]}, "uuids.0"),
        ({"uuids": [str(uuid.uuid4())] * 1001}, "uuids"),
        ({"uuids": [str(uuid.uuid4())], "view": "tiny"}, "view"),
        ({"uuid": [str(uuid.uuid4())]}, "uuid"),
    ],
)
def test_collection_bad_request_is_400(api, body, attr):
    response = api.post("/v3/collections/communications", body, format="json")
    assert response.status_code == 400
    assert attr in [error["attr"] for error in response.json()["errors"]]


def test_primary_info_has_russian_labels_and_allowed_actions(api):
    communication = CommunicationFactory(kind=Kind.PLANNED, direction="outbound")
    body = api.get(f"/v2/communications/{communication.uuid}/primary-info").json()
    assert (body["method_name"], body["kind_name"], body["direction_name"], body["status_name"]) == (
        "Звонок",
        "Запланированная",
        "Исходящая",
        "Создана",
    )
    assert body["date_kind"] == "date_planned_start"
    assert dt.datetime.fromisoformat(body["date"]) == communication.date_planned_start
    assert sorted(body["allowed_actions"]) == ["cancel", "close", "failed", "start"]


def test_primary_info_of_a_done_communication(api):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    body = api.get(f"/v2/communications/{communication.uuid}/primary-info").json()
    assert (body["status_name"], body["date_kind"], body["allowed_actions"]) == ("Выполнена", "date_finish", [])


def test_history_endpoint_lists_every_write(api):
    communication = services.communication_create(
        actor=api.user, source=Source.API, method="visit", kind="actual", direction="inbound", client_uuid=uuid.uuid4()
    )
    services.communication_update(uuid=communication.uuid, actor=api.user, source=Source.API, data={"subject": "x"})
    services.communication_transition(uuid=communication.uuid, name="close", actor=api.user, source=Source.API)
    body = api.get(f"/v2/communications/{communication.uuid}/history").json()
    assert [(h["action"], h["transition"]) for h in body] == [("create", ""), ("update", ""), ("transition", "close")]


def test_methods_dictionary_with_etag_and_filter(api):
    response = api.get("/v2/dicts/communications-methods")
    assert response.status_code == 200
    assert len(response.json()) == 9
    assert response.json()[0] == {"code": "call", "name": "Звонок", "is_active": True, "sort_order": 10}
    assert response["Cache-Control"] == "private, max-age=300"
    inactive = api.get("/v2/dicts/communications-methods", {"is_active": "false"}).json()
    assert [m["code"] for m in inactive] == ["post", "edo"]
    again = api.get("/v2/dicts/communications-methods", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert api.get("/v2/dicts/communications-methods", {"is_active": "maybe"}).status_code == 400


def test_statuses_dictionary(api):
    body = api.get("/v2/dicts/communications-statuses").json()
    assert body == [
        {"code": "created", "name": "Создана", "is_final": False},
        {"code": "in_work", "name": "В работе", "is_final": False},
        {"code": "done", "name": "Выполнена", "is_final": True},
        {"code": "cancelled", "name": "Отменена", "is_final": True},
        {"code": "failed", "name": "Аут", "is_final": True},
    ]


def test_too_many_query_parameters_is_400(api):
    query = "&".join(f"client_uuid={uuid.uuid4()}" for _ in range(1001))
    response = api.get(f"/v3/communications?{query}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"
