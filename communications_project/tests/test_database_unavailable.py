"""A lost database is 503 database_unavailable with Retry-After on every page, never a 500.

Here the connection is made to fail in-process; test_database_restart.py restarts a real server.
"""

import logging

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.test import Client
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch, settings):
    """From now on every query fails as it does while PostgreSQL restarts."""
    settings.DATABASE_RETRY_AFTER = 7

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    def down():
        monkeypatch.setattr(connection, "ensure_connection", refuse)
        monkeypatch.setattr(connection, "cursor", refuse)
        monkeypatch.setattr(connection, "chunked_cursor", refuse)

    return down


def assert_database_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "7"
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "server_error",
        "errors": [
            {"code": "database_unavailable", "detail": "The database is unavailable; retry shortly.", "attr": None}
        ],
    }


def errors_counted() -> float:
    return REGISTRY.get_sample_value("communications_database_errors_total", {"error": "OperationalError"}) or 0.0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v3/communications"),
        ("post", "/v2/communications"),
        ("patch", "/v2/communications/0b7e4a52-1d3f-4c1e-9a53-2f1c1d9c0001/close"),
        ("post", "/v3/collections/communications"),
        ("get", "/v2/dicts/communications-methods"),
        ("post", "/v1/communications/id-translations"),
        ("get", "/api/schema"),
        ("get", "/api/docs"),
    ],
)
def test_every_api_request_is_503_while_the_database_is_down(api, database_down, method, path):
    database_down()
    response = getattr(api, method)(path, {}, format="json") if method != "get" else api.get(path)
    assert_database_unavailable(response)


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin/communications/communication/"])
def test_admin_pages_are_503_while_the_database_is_down(admin_user, database_down, path):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    database_down()
    assert_database_unavailable(client.get(path))


def test_an_admin_login_attempt_is_503_while_the_database_is_down(database_down):
    client = Client(raise_request_exception=False)
    database_down()
    response = client.post("/admin/login/", {"username": "root", "password": "secret", "next": "/admin/"})
    assert_database_unavailable(response)


def test_a_dropped_connection_mid_request_is_503_too(api, monkeypatch, settings):
    settings.DATABASE_RETRY_AFTER = 7

    def dropped(*args, **kwargs):
        raise InterfaceError("the connection is lost")

    monkeypatch.setattr(connection, "cursor", dropped)
    assert_database_unavailable(api.get("/v3/communications"))


def test_the_outage_is_one_warning_line_per_request_without_a_traceback(api, database_down, caplog):
    before = errors_counted()
    database_down()
    with caplog.at_level(logging.INFO):
        api.get("/v3/communications")

    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in warnings] == ["database unavailable"]
    assert warnings[0].exc_info is None and warnings[0].error == "OperationalError"
    assert "Connection refused" in warnings[0].reason
    assert errors_counted() - before == 1


def test_readyz_says_the_database_is_unreachable(client, database_down):
    database_down()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database unreachable (OperationalError)"}


def test_healthz_does_not_depend_on_the_database(client, database_down):
    database_down()
    assert client.get("/healthz").status_code == 200


def test_other_database_errors_stay_500(api, monkeypatch):
    """A programming error is a bug to fix, not an outage to wait out."""
    from django.db import ProgrammingError

    def broken(*args, **kwargs):
        raise ProgrammingError("relation does not exist")

    monkeypatch.setattr(connection, "cursor", broken)
    api.raise_request_exception = False
    response = api.get("/v3/communications")
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert response.json()["errors"][0]["code"] == "error"
