"""API keys: hashed at rest, several per user, expiring, revocable, last use kept to the minute."""

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from communications.tests.factories import CommunicationFactory, UserFactory
from conftest import AUTH_QUERIES
from credentials import services
from credentials.authentication import LAST_USE
from credentials.models import ApiKey

pytestmark = pytest.mark.django_db

VIEW = "communications.view_communication"
LIST = "/v3/communications"


def get(key: str, url: str = LIST):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(url)


def assert_refused(response, code: str, detail: str):
    assert response.status_code == 401, response.content
    assert response.json() == {"type": "client_error", "errors": [{"code": code, "detail": detail, "attr": None}]}
    assert response.headers["WWW-Authenticate"] == (
        f'Token realm="communications", error="invalid_token", error_description="{detail}"'
    )


def test_a_new_key_is_shown_once_and_stored_as_its_hash_and_prefix(user_with_perms):
    user = user_with_perms(VIEW)
    api_key, key = services.api_key_create(user=user, name="CRM front end")
    assert key.startswith("cmk_") and len(key) == 56
    assert api_key.prefix == key[:12]
    assert api_key.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (api_key.name, api_key.date_expires, api_key.date_last_used) == ("CRM front end", None, None)
    assert get(key).status_code == 200


def test_the_table_holds_no_usable_secret(user_with_perms, api_key_for):
    user = user_with_perms(VIEW)
    keys = [api_key_for(user, name=f"key {n}") for n in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM credentials_apikey")
        stored = [str(value) for row in cursor.fetchall() for value in row if value is not None]
    assert not any(key in value for key in keys for value in stored)
    for value in stored:
        assert get(value).status_code == 401, value
    assert all(get(key).status_code == 200 for key in keys)


def test_two_keys_of_one_user_both_work_and_revoking_one_leaves_the_other(user_with_perms):
    user = user_with_perms(VIEW)
    old, old_key = services.api_key_create(user=user, name="old")
    new, new_key = services.api_key_create(user=user, name="new")
    assert get(old_key).status_code == get(new_key).status_code == 200
    assert services.api_key_revoke(prefix=old.prefix) == (old, True)
    assert_refused(get(old_key), "api_key_revoked", "The API key has been revoked.")
    assert get(new_key).status_code == 200
    old.refresh_from_db()
    assert old.date_revoked is not None
    assert services.api_key_revoke(prefix=old.prefix)[1] is False  # revoking again changes nothing


def test_an_expired_key_is_refused(user_with_perms):
    user = user_with_perms(VIEW)
    api_key, key = services.api_key_create(user=user, name="short", expires_at=timezone.now() + dt.timedelta(days=1))
    assert get(key).status_code == 200
    ApiKey.objects.filter(pk=api_key.pk).update(date_expires=timezone.now() - dt.timedelta(seconds=1))
    assert_refused(get(key), "api_key_expired", "The API key has expired.")


def test_an_unknown_key_is_refused():
    assert_refused(get("cmk_abcdefgh_" + "x" * 43), "authentication_failed", "Invalid API key.")


def test_a_key_longer_than_any_key_is_refused_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert_refused(get("x" * 129), "authentication_failed", "Invalid API key.")


def test_the_key_of_a_deactivated_user_is_refused(user_with_perms, api_key_for):
    user = user_with_perms(VIEW)
    key = api_key_for(user)
    user.is_active = False
    user.save()
    assert_refused(get(key), "authentication_failed", "User inactive or deleted.")


@pytest.mark.parametrize("header", ["Token", "Token a b"])
def test_a_token_header_without_exactly_one_key_is_an_invalid_request(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_last_used_is_written_at_most_once_a_minute_in_the_one_query(
    user_with_perms, api_key_for, django_assert_num_queries
):
    user = user_with_perms(VIEW)
    key = api_key_for(user)
    url = f"/v2/communications/{CommunicationFactory().uuid}"
    with django_assert_num_queries(1 + AUTH_QUERIES):  # the first use writes, in the same statement
        assert get(key, url).status_code == 200
    first = ApiKey.objects.get(user=user).date_last_used
    assert first is not None and timezone.now() - first < dt.timedelta(seconds=5)
    with CaptureQueriesContext(connection) as queries:
        assert get(key, url).status_code == 200
    assert len(queries) == 1 + AUTH_QUERIES
    assert "UPDATE" not in queries[0]["sql"]  # within the minute the read does not even ask to write
    assert ApiKey.objects.get(user=user).date_last_used == first
    # A minute later (or in another process) the read asks again, and the database writes.
    LAST_USE.forget()
    with django_assert_num_queries(1 + AUTH_QUERIES):
        assert get(key, url).status_code == 200
    assert ApiKey.objects.get(user=user).date_last_used == first  # stored less than a minute ago: kept
    earlier = timezone.now() - dt.timedelta(seconds=61)
    ApiKey.objects.filter(user=user).update(date_last_used=earlier)
    LAST_USE.forget()
    assert get(key, url).status_code == 200
    assert ApiKey.objects.get(user=user).date_last_used > earlier + dt.timedelta(seconds=60)


def test_a_refused_key_is_not_marked_used(user_with_perms):
    user = user_with_perms(VIEW)
    revoked, revoked_key = services.api_key_create(user=user, name="revoked")
    services.api_key_revoke(prefix=revoked.prefix)
    expired, expired_key = services.api_key_create(user=user, name="expired")
    ApiKey.objects.filter(pk=expired.pk).update(date_expires=timezone.now())
    assert get(revoked_key).status_code == get(expired_key).status_code == 401
    assert list(ApiKey.objects.filter(user=user).values_list("date_last_used", flat=True)) == [None, None]


def test_a_key_needs_a_name_and_a_future_expiry():
    from communications_project.errors import DomainError

    user = UserFactory()
    with pytest.raises(DomainError, match="needs a name"):
        services.api_key_create(user=user, name="  ")
    with pytest.raises(DomainError, match="in the future"):
        services.api_key_create(user=user, name="x", expires_at=timezone.now())
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", dt.timedelta(days=90)),
        ("12h", dt.timedelta(hours=12)),
        ("30m", dt.timedelta(minutes=30)),
        ("4w", dt.timedelta(weeks=4)),
        (" 1d ", dt.timedelta(days=1)),
    ],
)
def test_durations_read(text, expected):
    assert services.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "0d", "-1d", "1.5d", "1y", "3651d", "٩٠d", "90 d", "90D"])
def test_bad_durations_are_refused(text):
    with pytest.raises(services.InvalidDuration):
        services.parse_duration(text)
