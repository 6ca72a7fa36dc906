"""What a client generated from the schema sends, the server takes; what the schema refuses, it refuses.

Real requests and answers, validated by openapi-core against the schema the service generates:
one test per class of failure schemathesis found with other seeds (issue 20). Each would fail
against the schema as it was (a free-form `details`, methods as any string, dates of any year,
limits the request line could not carry, rules left unsaid).
"""

import datetime as dt
import importlib.util
import json
import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import ImmutableMultiDict

from communications.models import Communication, Kind
from communications.tests.factories import CommunicationFactory
from dicts.models import CommunicationMethod
from id_translations.models import IdTranslation

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
LOOKUP = "/v1/communications/id-translations"


@pytest.fixture(scope="module")
def document(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


@pytest.fixture(scope="module")
def openapi(document):
    return OpenAPI.from_dict(document)


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("schemathesis_hooks", ROOT / ".ci" / "schemathesis_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mock_request(method: str, path: str, *, query=(), body=None, headers=None) -> MockRequest:
    return MockRequest(
        "http://testserver",
        method,
        path,
        args=ImmutableMultiDict(list(query)),
        headers={"Authorization": "Token x", "Content-Type": "application/json", **(headers or {})},
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
    )


def valid(openapi, method: str, path: str, *, query=(), body=None, headers=None) -> bool:
    try:
        openapi.validate_request(mock_request(method, path, query=query, body=body, headers=headers))
    except OpenAPIError:
        return False
    return True


def answer_is_valid(openapi, method: str, path: str, response, *, query=(), body=None) -> None:
    """The server's answer as the schema states it (raises when not)."""
    openapi.validate_response(
        mock_request(method, path, query=query, body=body),
        MockResponse(response.content, status_code=response.status_code, content_type="application/json"),
    )


def new_body(method: str, **fields) -> dict:
    return {
        "method": method,
        "kind": "actual",
        "direction": "inbound",
        "client_uuid": str(uuid.uuid4()),
        **fields,
    }


# `details` per method


@pytest.mark.parametrize(
    ("body", "code", "attr"),
    [
        (new_body("call"), "required", "details.phone"),
        (new_body("call", details={}), "required", "details.phone"),
        (new_body("call", details={"phone": "89161234567"}), "invalid_phone", "details.phone"),
        (new_body("sms", details={"phone": " +79161234567"}), "invalid_phone", "details.phone"),
        (new_body("email", details={"email": "client@example.com", "phone": "+79161234567"}), "unknown_key", None),
        (new_body("messenger", details={"messenger": "icq", "handle": "@client"}), "invalid_choice", None),
        (new_body("site_request", details={"source_url": "ftp://dealer.example/"}), "invalid", None),
        (new_body("visit", details={"phone": "+79161234567"}), "unknown_key", "details.phone"),
        (new_body("call", details={"phone": "+79161234567", "duration_sec": -1}), "invalid", None),
    ],
)
def test_details_the_schema_refuses_are_refused(api, openapi, body, code, attr):
    assert not valid(openapi, "post", "/v2/communications", body=body)
    response = api.post("/v2/communications", body, format="json")
    assert response.status_code == 400
    errors = [(e["code"], e["attr"]) for e in response.json()["errors"]]
    assert code in [c for c, _ in errors] and (attr is None or (code, attr) in errors)
    assert not Communication.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        new_body("sms", details={"phone": "+79161234567"}),
        new_body("call", details={"phone": "+79161234567", "call_id": None, "duration_sec": 0}),
        new_body("email", details={"email": "client@example.com"}),
        new_body("messenger", details={"messenger": "telegram", "handle": "@client"}),
        new_body("site_request", details={"source_url": "https://dealer.example/form", "utm_source": "ya"}),
        new_body("mobile_app_request"),
        new_body("visit", details={}),
    ],
)
def test_bodies_the_schema_admits_are_created_and_answered_as_it_states(api, openapi, body):
    assert valid(openapi, "post", "/v2/communications", body=body)
    response = api.post("/v2/communications", body, format="json")
    assert response.status_code == 201, response.content
    answer_is_valid(openapi, "post", "/v2/communications", response, body=body)
    stored = Communication.objects.get()
    assert stored.details == {k: v for k, v in body.get("details", {}).items() if v is not None}


def test_create_is_one_body_per_active_method_with_a_discriminator(document):
    body = document["components"]["schemas"]["CommunicationCreateRequest"]
    active = list(CommunicationMethod.objects.filter(is_active=True).values_list("code", flat=True))
    assert list(body["discriminator"]["mapping"]) == active
    assert body["discriminator"]["propertyName"] == "method"
    assert "post" not in body["discriminator"]["mapping"] and "method_inactive" in body["description"]


def test_a_patch_of_details_is_checked_against_the_methods_keys(api, openapi):
    communication = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})
    path = f"/v2/communications/{communication.uuid}"
    assert not valid(openapi, "patch", path, body={"details": {"phone": "8916"}})
    assert not valid(openapi, "patch", path, body={"details": {"phone": None}})  # a required key stays
    assert valid(openapi, "patch", path, body={"details": {"duration_sec": 30, "call_id": None}})
    response = api.patch(path, {"details": {"duration_sec": 30}}, format="json")
    assert response.status_code == 200
    answer_is_valid(openapi, "patch", path, response, body={"details": {"duration_sec": 30}})


# Methods as an enum


def test_the_method_filter_takes_the_dictionarys_codes_and_nothing_else(api, openapi, document):
    for code in CommunicationMethod.objects.values_list("code", flat=True):
        assert valid(openapi, "get", "/v3/communications", query=[("method", code)])
        assert api.get("/v3/communications", {"method": code}).status_code == 200
    assert not valid(openapi, "get", "/v3/communications", query=[("method", "0")])
    assert api.get("/v3/communications", {"method": "0"}).status_code == 400
    method = next(p for p in document["paths"]["/v3/communications"]["get"]["parameters"] if p["name"] == "method")
    items = method["schema"]["items"]
    assert "inactive" in items["x-enum-descriptions"][items["enum"].index("post")]
    assert "new codes may appear" in items["description"]


def test_answers_take_any_method_code_the_dictionary_gains(api, openapi, document):
    CommunicationMethod.objects.create(code="fax", name="Факс", sort_order=99)
    communication = CommunicationFactory(method_id="fax", details={})
    response = api.get(f"/v2/communications/{communication.uuid}")
    assert response.json()["method"] == "fax"
    answer_is_valid(openapi, "get", f"/v2/communications/{communication.uuid}", response)
    assert "x-extensible-enum" in document["components"]["schemas"]["CommunicationFull"]["properties"]["method"]


# Date ranges


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("1900-01-01T00:00:00+01:00", True),  # 1899 in UTC: the year is the one written
        ("2999-12-31T23:59:59.999999999-05:00", True),
        ("1899-12-31T23:59:59Z", False),
        ("3000-01-01T00:00:00Z", False),
        ("0263-09-24T08:03:28.382592Z", False),
        ("2026-12-01T10:00:00", False),  # no offset
    ],
)
def test_date_filters_take_exactly_the_range_the_schema_states(api, openapi, value, admitted):
    for name in ("date_finish_after", "date_planned_start_before", "date_updated_after"):
        assert valid(openapi, "get", "/v3/communications", query=[(name, value)]) is admitted
        assert api.get("/v3/communications", {name: value}).status_code == (200 if admitted else 400)


def test_a_date_before_1919_is_answered_as_the_same_instant(api, openapi):
    """Moscow's offset then had seconds (+02:30:17): JSON encoders cut them, and moved the instant."""
    body = new_body("visit", kind="planned", date_planned_start="1900-01-01T00:00:00Z")
    created = api.post("/v2/communications", body, format="json")
    answer_is_valid(openapi, "post", "/v2/communications", created, body=body)
    read = api.get(f"/v2/communications/{created.json()['uuid']}")
    value = read.json()["date_planned_start"]
    assert dt.datetime.fromisoformat(value) == dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
    primary = api.get(f"/v2/communications/{created.json()['uuid']}/primary-info").json()["date"]
    assert dt.datetime.fromisoformat(primary) == dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def test_a_cursor_longer_than_the_schema_states_is_refused(api, openapi):
    cursor = "A" * 201
    assert not valid(openapi, "get", "/v3/communications", query=[("cursor", cursor)])
    response = api.get("/v3/communications", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert (
        api.get(api.get("/v3/communications", {"page_size": 1}).json()["next"] or "/v3/communications").status_code
        == 200
    )


# The look-up's limits and its one-of rule


def _max_items(document, name: str) -> int:
    parameters = document["paths"][LOOKUP]["get"]["parameters"]
    return next(p for p in parameters if p["name"] == name)["schema"]["maxItems"]


def test_the_longest_lookup_the_schema_admits_is_answered(api_as, openapi, document):
    client = api_as("id_translations.view_idtranslation")
    uuids = [str(uuid.uuid4()) for _ in range(_max_items(document, "flora_uuid"))]
    ids = list(range(1, _max_items(document, "oracle_id") + 1))
    IdTranslation.objects.create(flora_uuid=uuids[0], oracle_id=ids[-1])
    query = [("flora_uuid", u) for u in uuids] + [("oracle_id", str(i)) for i in ids]
    assert valid(openapi, "get", LOOKUP, query=query)
    response = client.get(LOOKUP, {"flora_uuid": uuids, "oracle_id": ids})
    assert response.status_code == 200, response.content
    answer_is_valid(openapi, "get", LOOKUP, response, query=query)
    too_many = query + [("flora_uuid", uuids[0])]  # counted as sent, duplicates too
    assert not valid(openapi, "get", LOOKUP, query=too_many)
    response = client.get(LOOKUP, {"flora_uuid": [*uuids, uuids[0]]})
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("max_length", "flora_uuid")]


def test_a_lookup_with_neither_parameter_is_a_rule_the_schema_states_for_tools(api_as, openapi, document, hooks):
    operation = document["paths"][LOOKUP]["get"]
    assert operation["x-required-one-of"] == ["flora_uuid", "oracle_id"]
    assert "neither" in operation["description"]
    assert valid(openapi, "get", LOOKUP)  # OpenAPI itself cannot say it
    response = api_as("id_translations.view_idtranslation").get(LOOKUP)
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("required", "flora_uuid")]
    assert hooks._misses_one_of(operation, {}) and not hooks._misses_one_of(operation, {"oracle_id": [1]})


# The hooks leave out exactly what a stated rule refuses


def fake_case(document, path: str, method: str, *, body=None, query=None, headers=None):
    return SimpleNamespace(
        meta=None,
        operation=SimpleNamespace(
            schema=SimpleNamespace(raw_schema=document), definition=SimpleNamespace(raw=document["paths"][path][method])
        ),
        body=body,
        query=query or {},
        headers=headers or {},
        method=method,
        formatted_path=path,
    )


FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
PAST = "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("fields", "kept"),
    [
        ({"kind": "planned", "date_planned_start": FUTURE}, True),
        ({"kind": "planned"}, False),  # x-required-with
        ({"kind": "planned", "date_planned_start": FUTURE, "date_start": PAST}, False),  # x-only-with
        ({"kind": "planned", "date_planned_start": FUTURE, "date_planned_finish": PAST}, False),  # x-not-before
        ({"kind": "actual", "date_start": PAST}, True),
        ({"kind": "actual", "date_start": FUTURE}, False),  # x-not-in-future
        ({"kind": "actual", "date_planned_start": PAST}, False),  # x-only-with
    ],
)
def test_the_hooks_drop_exactly_the_create_bodies_a_cross_field_rule_refuses(api, document, hooks, fields, kept):
    body = new_body("visit", **fields)
    assert hooks.filter_case(None, fake_case(document, "/v2/communications", "post", body=body)) is kept
    assert api.post("/v2/communications", body, format="json").status_code == (201 if kept else 400)


def test_the_hooks_give_each_body_its_own_idempotency_key(document, hooks):
    """A generated key reused with another body would be 422 (the IETF draft) before the body is read."""
    operations = [
        (path, method)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    ]
    assert len(operations) >= 2
    for path, method in operations:
        pattern = next(p for p in document["paths"][path][method]["parameters"] if p["name"] == "Idempotency-Key")
        keys = []
        for body in ({"a": 1}, {"a": 2}, {"a": 1}):
            case = hooks.map_case(None, fake_case(document, path, method, body=body, headers={"Idempotency-Key": "0"}))
            keys.append(case.headers["Idempotency-Key"])
        assert keys[0] == keys[2] != keys[1]
        assert all(re.fullmatch(pattern["schema"]["pattern"], key) for key in keys)
        refused = hooks.map_case(None, fake_case(document, path, method, body={}, headers={"Idempotency-Key": ""}))
        assert refused.headers["Idempotency-Key"] == ""  # a negative case's invalid key stays


def test_every_rule_keyword_in_the_schema_is_one_the_hooks_apply(document, hooks):
    """A rule stated in a keyword nobody reads would be a rule CI's fuzzing trips over."""
    from communications_project.schema import RULE_KEYWORDS

    found = set()

    def walk(node):
        if isinstance(node, dict):
            found.update(key for key in node if key.startswith("x-"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert found - {"x-enum-descriptions", "x-extensible-enum"} == set(RULE_KEYWORDS)
    source = (ROOT / ".ci" / "schemathesis_hooks.py").read_text()
    assert all(f'"{keyword}"' in source for keyword in RULE_KEYWORDS)


def test_the_feeds_cursor_and_filters_are_exactly_what_the_server_takes(api_as, openapi):
    feed = api_as("communications.view_communicationevent")
    path = "/v3/communications/events"
    for cursor, admitted in [("7" + "f" * 15 + "0" * 16, True), ("8" + "0" * 31, False), ("0" * 16 + "f" * 16, False)]:
        assert valid(openapi, "get", path, query=[("after", cursor)]) is admitted
        assert feed.get(path, {"after": cursor}).status_code == (200 if admitted else 400)
    types = ["communication.created"] * 20
    assert not valid(openapi, "get", path, query=[("type", ",".join(types))])
    response = feed.get(path, {"type": ",".join(types)})
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("max_length", "type")]


def test_an_empty_feed_filter_is_refused_as_the_schema_says(api_as, openapi):
    feed = api_as("communications.view_communicationevent")
    for name in ("subject", "type"):
        assert not valid(openapi, "get", "/v3/communications/events", query=[(name, "")])
        response = feed.get("/v3/communications/events", {name: ""})
        assert response.status_code == 400 and response.json()["errors"][0]["attr"] == name


def test_a_blank_text_where_blank_is_allowed_is_valid_by_the_schema(api, openapi, document):
    """drf-spectacular's `oneOf` [pattern, ""] matched "" twice, so the schema refused what the server takes."""
    communication = CommunicationFactory(kind=Kind.PLANNED)
    path = f"/v2/communications/{communication.uuid}/cancel"
    assert valid(openapi, "post", path, body={"cancel_reason": ""})
    assert api.post(path, {"cancel_reason": ""}, format="json").status_code == 200
    properties = document["components"]["schemas"]["CommunicationCreateCallRequest"]["properties"]
    assert "oneOf" not in properties["subject"] and properties["subject"]["maxLength"] == 255


def test_text_that_is_blank_to_the_server_is_blank_to_the_schema(openapi, document):
    """DRF trims Python's whitespace (\\x1c-\\x1f, \\x85 too); the schema's `\\s` did not count those."""
    body, secret = {"channel_id": "\x1e", "event": "hangup"}, {"X-Telephony-Secret": "s"}
    assert not valid(openapi, "post", "/v2/telephony/events", body=body, headers=secret)
    assert valid(openapi, "post", "/v2/telephony/events", body={**body, "channel_id": "\x1ex"}, headers=secret)
