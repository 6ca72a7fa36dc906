"""API keys in the admin: made and shown once (never kept in a message or the session), revoked."""

import datetime as dt
import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from communications.tests.factories import UserFactory
from credentials import services
from credentials.models import ApiKey

pytestmark = pytest.mark.django_db

ADD = "/admin/credentials/apikey/add/"
LIST = "/admin/credentials/apikey/"


@pytest.fixture
def staff(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def works(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/v2/dicts/communications-methods").status_code


def test_a_key_made_in_the_admin_is_shown_once_on_the_answer_and_nowhere_else(staff, admin_user):
    owner = UserFactory(username="crm-service")
    response = staff.post(ADD, {"user": owner.pk, "name": "CRM front end", "date_expires_0": "", "date_expires_1": ""})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'id="api-key" type="text" readonly value="(cmk_[^"]+)"', response.content.decode()).group(1)
    api_key = ApiKey.objects.get()
    assert (api_key.user, api_key.name, api_key.created_by, api_key.prefix) == (
        owner,
        "CRM front end",
        admin_user,
        key[:12],
    )
    assert works(key) == 200
    # Not in the session (where a message would wait for the next page), not on the list or the key's page.
    assert not any(key in str(session.get_decoded()) for session in Session.objects.all())
    assert key not in "".join(response.cookies[name].value for name in response.cookies)
    for page in (LIST, f"{LIST}{api_key.pk}/change/"):
        shown = staff.get(page)
        assert shown.status_code == 200
        assert api_key.prefix in shown.content.decode() and key not in shown.content.decode()


def test_a_key_with_an_expiry_in_the_past_is_refused_by_the_form(staff):
    owner = UserFactory()
    past = timezone.localtime() - dt.timedelta(days=1)
    response = staff.post(
        ADD, {"user": owner.pk, "name": "x", "date_expires_0": f"{past:%d.%m.%Y}", "date_expires_1": f"{past:%H:%M:%S}"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["date_expires"]
    assert not ApiKey.objects.exists()


def test_keys_are_revoked_from_the_list_and_not_deleted(staff, admin_user):
    owner = UserFactory()
    kept, kept_key = services.api_key_create(user=owner, name="kept")
    gone, gone_key = services.api_key_create(user=owner, name="gone")
    page = staff.get(LIST)
    actions = [value for value, _label in page.context["action_form"].fields["action"].choices]
    assert "revoke" in actions and "delete_selected" not in actions
    response = staff.post(LIST, {"action": "revoke", "_selected_action": [gone.pk]}, follow=True)
    assert response.status_code == 200
    gone.refresh_from_db()
    assert (gone.date_revoked is not None, gone.revoked_by) == (True, admin_user)
    assert works(gone_key) == 401
    assert works(kept_key) == 200


def test_the_owner_and_expiry_of_a_key_are_fixed_after_it_is_made(staff):
    api_key, _key = services.api_key_create(user=UserFactory(), name="before")
    other = UserFactory()
    response = staff.post(f"{LIST}{api_key.pk}/change/", {"user": other.pk, "name": "after"})
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.user_id != other.pk) == ("after", True)


def test_the_list_filters_keys_by_status(staff):
    owner = UserFactory()
    active, _ = services.api_key_create(user=owner, name="active")
    revoked, _ = services.api_key_create(user=owner, name="revoked")
    services.api_key_revoke(prefix=revoked.prefix)
    expired, _ = services.api_key_create(user=owner, name="expired")
    ApiKey.objects.filter(pk=expired.pk).update(date_expires=timezone.now())
    for status, expected in (("active", active), ("revoked", revoked), ("expired", expired)):
        shown = list(staff.get(LIST, {"status": status}).context["cl"].result_list)
        assert shown == [expected], status
