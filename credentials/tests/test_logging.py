"""Nothing of a key or a token reaches a log line: refused, accepted, or while the provider is down."""

import io
import logging

import pytest
from rest_framework.test import APIClient

from communications_project.observability import JsonLogFormatter, RequestContextFilter
from credentials import services

from .conftest import SigningKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged():
    """Everything every logger writes, at DEBUG, through the production filter and formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestContextFilter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream.getvalue
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def send(header: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client.get("/v3/communications?page_size=1")


def test_no_api_key_is_logged(user_with_perms, logged):
    user = user_with_perms("communications.view_communication")
    api_key, key = services.api_key_create(user=user, name="logged?")
    assert send(f"Token {key}").status_code == 200
    services.api_key_revoke(prefix=api_key.prefix)
    assert send(f"Token {key}").status_code == 401
    assert send(f"Token {key}x").status_code == 401
    output = logged()
    assert "api key created" in output and "/v3/communications" in output  # the log did run
    secret = key[len(api_key.prefix) :]
    assert secret not in output and key[:-8] not in output


def test_no_bearer_token_is_logged(provider, logged, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 0.001
    good = provider.token(sub="ivanov")
    stranger = provider.token(key=SigningKey())
    assert send(f"Bearer {good}").status_code == 200
    assert send(f"Bearer {good[:-4]}AAAA").status_code == 401
    assert send(f"Bearer {stranger}").status_code == 401
    provider.down()
    assert send(f"Bearer {provider.token(key=SigningKey())}").status_code == 503
    output = logged()
    assert "identity provider unavailable" in output and "ivanov" in output  # the log did run
    for token in (good, stranger):
        for segment in token.split("."):
            assert segment not in output
