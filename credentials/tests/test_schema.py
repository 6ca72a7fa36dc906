"""The OpenAPI schema declares both ways in (API keys and bearer tokens) and why each may be refused."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from credentials.oidc import REFUSAL_CODES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():  # the per-method bodies read the methods dictionary
        return SchemaGenerator().get_schema(request=None, public=True)


def test_both_schemes_are_declared(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["tokenAuth"]["description"],
    }
    assert "Token <key>" in schemes["tokenAuth"]["description"]
    assert (schemes["bearerAuth"]["type"], schemes["bearerAuth"]["scheme"]) == ("http", "bearer")
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"


def test_every_api_operation_takes_either_and_may_say_why_it_refused(schema):
    codes = set(schema["components"]["schemas"]["Error401CodeEnum"]["enum"])
    assert {"not_authenticated", "authentication_failed", "api_key_expired", "api_key_revoked"} <= codes
    assert set(REFUSAL_CODES) <= codes
    checked = 0
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path == "/v2/telephony/events":
                assert operation.get("security", []) == []  # the PBX's shared secret, not a user's credential
                continue
            assert {"tokenAuth": []} in operation["security"] and {"bearerAuth": []} in operation["security"], path
            assert "identity_provider_unavailable" in operation["responses"]["503"]["description"], path
            checked += 1
    assert checked > 15
