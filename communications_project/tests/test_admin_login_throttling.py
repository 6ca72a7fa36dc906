"""Admin login throttling (django-axes): a username guessed at from one address is locked out."""

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client

from communications.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff():
    user = UserFactory(username="operator", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def login(client, password, **meta):
    return client.post(
        "/admin/login/?next=/admin/", {"username": "operator", "password": password, "next": "/admin/"}, **meta
    )


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_the_sixth_attempt_after_five_wrong_passwords_is_refused_even_with_the_right_one(staff, settings):
    client = Client()
    for _ in range(4):
        response = login(client, "wrong")
        assert response.status_code == 200 and not logged_in(response)  # the form again, with its error
    assert login(client, "wrong").status_code == 429  # the fifth failure locks the pair at once

    response = login(client, PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="operator").failures_since_start >= 5


def test_the_right_password_works_again_after_the_cool_off(staff, settings):
    client = Client()
    for _ in range(6):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 429

    # The cool-off passes.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)

    assert logged_in(login(client, PASSWORD))
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_a_success_before_the_limit_resets_the_count(staff):
    client = Client()
    for _ in range(4):
        login(client, "wrong")
    assert logged_in(login(client, PASSWORD))
    client.logout()
    for _ in range(4):
        login(client, "wrong")
    assert logged_in(login(client, PASSWORD))


def test_behind_the_proxy_another_address_is_not_locked_out(staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    attacker = Client()
    for _ in range(5):
        login(attacker, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert login(attacker, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy).status_code == 429
    # Forging the left of the header does not help the attacker.
    assert login(attacker, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9", **proxy).status_code == 429

    # The real operator, at another address behind the same proxy, still logs in.
    assert logged_in(login(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy))
    assert AccessAttempt.objects.get(ip_address="203.0.113.9").failures_since_start >= 5


def test_api_tokens_are_not_throttled_by_admin_logins(staff, api):
    for _ in range(6):
        login(Client(), "wrong")
    assert api.get("/v3/communications").status_code == 200
