"""`create_api_key USER --name … [--expires-in 90d]` and `revoke_api_key PREFIX`."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from credentials.models import ApiKey

pytestmark = pytest.mark.django_db


def create(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def status(key: str) -> tuple[int, str | None]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/v2/dicts/communications-methods")
    return response.status_code, None if response.status_code == 200 else response.json()["errors"][0]["code"]


def test_create_api_key_prints_the_key_alone_on_stdout(user):
    key, told = create(user.username, "--name", "CRM front end", "--expires-in", "90d")
    api_key = ApiKey.objects.get(user=user)
    assert key.startswith(api_key.prefix) and "\n" not in key
    assert f"API key {api_key.prefix}… for {user.username} (CRM front end), expires " in told
    assert key not in told
    assert abs(api_key.date_expires - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    assert status(key) == (200, None)


def test_create_api_key_without_an_expiry_makes_one_that_never_expires(user):
    key, told = create(user.username, "--name", "nightly export")
    assert "never expires" in told
    assert ApiKey.objects.get(user=user).date_expires is None


def test_create_api_key_refuses_an_unknown_user_and_a_bad_duration(user):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        create("nobody", "--name", "x")
    with pytest.raises(CommandError, match="90d"):
        create(user.username, "--name", "x", "--expires-in", "ninety days")
    assert not ApiKey.objects.exists()


def test_revoke_api_key_refuses_the_key_from_the_next_request(user):
    first, _ = create(user.username, "--name", "first")
    second, _ = create(user.username, "--name", "second")
    prefix = ApiKey.objects.get(name="first").prefix
    out = StringIO()
    call_command("revoke_api_key", prefix, stdout=out)
    assert out.getvalue() == f"API key {prefix}… of {user.username} (first): revoked.\n"
    assert status(first) == (401, "api_key_revoked")
    assert status(second) == (200, None)
    out = StringIO()
    call_command("revoke_api_key", f"{prefix}…", stdout=out)  # as the admin shows it
    assert out.getvalue() == f"API key {prefix}… of {user.username} (first) was already revoked.\n"


def test_revoke_api_key_refuses_an_unknown_prefix():
    with pytest.raises(CommandError, match="No API key has the prefix 'cmk_nothere'"):
        call_command("revoke_api_key", "cmk_nothere")
