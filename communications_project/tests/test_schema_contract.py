"""The OpenAPI schema states what the server enforces, and the server refuses what it forbids.

schemathesis checks both directions against a live server in CI (`.ci/fuzz`); these tests pin the
rules that matter most, so a change that breaks one fails here first.
"""

import re
import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator

from communications.models import Communication, Kind
from communications.tests.factories import CommunicationFactory

pytestmark = pytest.mark.django_db

# Bodies the server takes with extra keys: what the PBX sends is not ours to police.
TOLERANT_BODIES = {"/v2/telephony/events"}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():  # the per-method bodies read the methods dictionary
        return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema, node):
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_request_body_refuses_unknown_fields(schema):
    checked = 0
    for path, method, operation in _operations(schema):
        if "requestBody" not in operation or path in TOLERANT_BODIES:
            continue
        body = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
        variants = [_resolve(schema, v) for v in body.get("oneOf", [body])]
        for variant in variants:
            if variant.get("type") == "array":
                variant = _resolve(schema, variant["items"])
            assert variant.get("additionalProperties") is False, f"{method.upper()} {path}"
            checked += 1
    assert checked >= 9


def test_headers_state_their_patterns(schema):
    headers = {
        (path, method, parameter["name"]): parameter["schema"]
        for path, method, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    }
    if_match = [s for (_, _, name), s in headers.items() if name == "If-Match"]
    keys = [s for (_, _, name), s in headers.items() if name == "Idempotency-Key"]
    assert len(if_match) == 6 and len(keys) == 3  # create, call-phone, record an attempt
    assert all(re.fullmatch(s["pattern"], '"3"') and not re.fullmatch(s["pattern"], "") for s in if_match)
    assert all(s["pattern"] == "^[!-~]{1,255}$" and s["maxLength"] == 255 for s in keys)


def test_required_fields_lists_and_enums(schema):
    components = schema["components"]["schemas"]
    assert components["FailRequest"]["required"] == ["fail_reason"]  # PATCH bodies keep theirs
    uuids = components["CollectionRequestRequest"]["properties"]["uuids"]
    assert (uuids["minItems"], uuids["maxItems"]) == (1, 1000)
    many = components["IdTranslationOneOrManyRequest"]["oneOf"][1]
    assert (many["minItems"], many["maxItems"]) == (1, 1000)
    parameters = {p["name"]: p for p in schema["paths"]["/v3/communications"]["get"]["parameters"]}
    assert parameters["status"]["schema"]["items"]["enum"] == ["created", "in_work", "done", "cancelled", "failed"]
    assert parameters["status"]["explode"] is True
    assert "" not in parameters["ordering"]["schema"]["enum"]
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}


def test_a_created_communication_links_to_what_can_be_done_with_it(schema):
    links = schema["paths"]["/v2/communications"]["post"]["responses"]["201"]["links"]
    operation_ids = {operation.get("operationId") for _, _, operation in _operations(schema)}
    assert {"v2_communications_retrieve", "communications_close", "communications_cancel"} <= set(links)
    assert all(link["operationId"] in operation_ids for link in links.values())


# The server refuses what the schema forbids.


def test_every_operation_states_the_503_of_a_database_outage_with_retry_after(schema):
    for path, method, operation in _operations(schema):
        outage = operation["responses"].get("503")
        assert outage, f"{method} {path}"
        assert "database_unavailable" in outage["description"]
        assert "Retry-After" in outage["headers"]


@pytest.mark.parametrize("header", ["", "abc", '"3', "W/3", '"1234567890"', "3 4"])
def test_a_malformed_if_match_is_400_and_changes_nothing(api, header):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = api.patch(
        f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 400
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("invalid", "If-Match")]
    assert Communication.objects.get(pk=communication.pk).version == 1


@pytest.mark.parametrize("header", ['"1"', 'W/"1"', "1", "*"])
def test_the_forms_of_if_match_the_schema_allows_are_accepted(api, header):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = api.patch(
        f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "query",
    ["status=", "status=done,", "client_uuid=", "date_updated_after=", "kind=actual&kind="],
)
def test_an_empty_filter_value_is_400_not_no_filter(api, query):
    response = api.get(f"/v3/communications?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["type"] == "validation_error"


@pytest.mark.parametrize(
    "value",
    [uuid.uuid4().hex, f"{{{uuid.uuid4()}}}", f"urn:uuid:{uuid.uuid4()}"],
)
def test_a_uuid_only_in_its_canonical_form(api, api_as, value):
    assert api.get(f"/v3/communications?client_uuid={value}").status_code == 400
    lookup = api_as("id_translations.view_idtranslation").get(f"/v1/communications/id-translations?flora_uuid={value}")
    assert lookup.status_code == 400
    response = api.post("/v3/collections/communications", {"uuids": [value]}, format="json")
    assert response.status_code == 400
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("invalid", "uuids.0")]


def test_whitespace_only_where_blank_is_refused_is_400(api):
    response = api.post(
        "/v2/communications",
        {"method": "   ", "kind": "actual", "direction": "inbound", "client_uuid": str(uuid.uuid4())},
        format="json",
    )
    assert response.status_code == 400
    assert ("blank", "method") in [(e["code"], e["attr"]) for e in response.json()["errors"]]


def test_a_read_only_choice_of_a_blankable_column_admits_blank(schema):
    """ModelSerializer drops allow_blank from read-only fields; the schema must not."""
    client_outcome = schema["components"]["schemas"]["CallLog"]["properties"]["client_outcome"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in client_outcome["oneOf"]
