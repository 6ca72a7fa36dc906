"""The fast read path keeps every answer as it was: rows vs the read serializers, one-query
authentication with Django's permission semantics, the kept methods dictionary, the renderer."""

import datetime as dt
import decimal
import json
import time
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from communications import selectors, services
from communications.api.rows import VIEWS
from communications.api.serializers import CommunicationFullSerializer, CommunicationShortSerializer
from communications.models import Kind, Source, Status
from communications_project.renderers import ORJSONRenderer
from conftest import AUTH_QUERIES
from dicts import selectors as dict_selectors
from dicts.models import CommunicationMethod
from id_translations.models import IdTranslation

from .factories import CommunicationFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW = "communications.view_communication"


def _as_json(data) -> object:
    return json.loads(ORJSONRenderer().render(data))


@pytest.mark.parametrize(
    ("view", "serializer"), [("full", CommunicationFullSerializer), ("short", CommunicationShortSerializer)]
)
def test_rows_answer_exactly_what_the_read_serializers_declare(view, serializer, user):
    communication = CommunicationFactory(
        kind=Kind.PLANNED,
        method_code="email",
        details={"email": "a@example.ru", "nested": {"n": [1, 2.5, None]}},
        dealer_uuid=uuid.uuid4(),
        date_planned_start=dt.datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=dt.UTC),
        date_planned_finish=dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC),
        created_by=user,
    )
    services.communication_transition(
        uuid=communication.uuid, name="cancel", actor=user, source=Source.API, cancel_reason="Перенос"
    )
    IdTranslation.objects.create(flora_uuid=communication.uuid, oracle_id=4242)
    rows = VIEWS[view]
    row = selectors.communication_row(communication.uuid, rows.columns)
    expected = JSONRenderer().render(serializer(selectors.communication_get(communication.uuid)).data)
    assert _as_json(rows.to_representation(row)) == json.loads(expected)
    if view == "full":
        shown = _as_json(rows.to_representation(row))
        assert (shown["oracle_id"], shown["is_cancelled"], shown["updated_by"]) == (4242, True, user.username)
        assert shown["date_planned_start"] == "2026-03-01T12:30:00.123456+03:00"  # Moscow, as DRF shows it


def test_a_permission_granted_or_taken_applies_from_the_next_request(user, api_key_for, django_assert_num_queries):
    communication = CommunicationFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    url = f"/v2/communications/{communication.uuid}"
    assert client.get(url).status_code == 403
    readers = Group.objects.create(name="readers")
    readers.permissions.add(Permission.objects.get(codename="view_communication"))
    user.groups.add(readers)
    with django_assert_num_queries(1 + AUTH_QUERIES):
        assert client.get(url).status_code == 200
    user.groups.remove(readers)
    user.user_permissions.add(Permission.objects.get(codename="view_communication"))
    assert client.get(url).status_code == 200
    user.user_permissions.clear()
    response = client.get(url)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


def test_a_permission_for_another_action_does_not_read(api_as):
    client = api_as("communications.add_communication")
    response = client.get(f"/v2/communications/{CommunicationFactory().uuid}")
    assert response.status_code == 403


def test_superuser_token_reads_without_explicit_permissions(api_key_for):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(root)}")
    assert client.get(f"/v2/communications/{CommunicationFactory().uuid}").status_code == 200


@pytest.mark.parametrize("header", ["Token nope", "Token ", "Bearer x"])
def test_bad_token_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/v3/communications")
    assert response.status_code == 401
    assert response.json()["type"] == "client_error"


def test_inactive_users_token_is_401(api_as):
    client = api_as(VIEW)
    client.user.is_active = False
    client.user.save()
    response = client.get("/v3/communications")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_methods_dictionary_is_read_once_per_process(api, django_assert_num_queries, settings):
    settings.DICTS_CACHE_SECONDS = 3600
    assert api.get("/v2/dicts/communications-methods").status_code == 200
    with django_assert_num_queries(AUTH_QUERIES):
        assert len(api.get("/v2/dicts/communications-methods").json()) == 9


def test_a_new_method_filters_at_once_and_an_edit_shows_after_the_keep_time(api, settings, monkeypatch):
    settings.DICTS_CACHE_SECONDS = 3600
    assert api.get("/v2/dicts/communications-methods").status_code == 200  # kept now
    CommunicationMethod.objects.create(code="fax", name="Факс", sort_order=99)
    assert api.get("/v3/communications", {"method": "fax"}).status_code == 200  # unknown to the copy: looked up
    assert api.get("/v3/communications", {"method": "telex"}).status_code == 400
    CommunicationMethod.objects.filter(code="call").update(name="Телефонный звонок")
    CommunicationMethod.objects.filter(code="visit").update(is_active=False)
    names = {m["code"]: m["name"] for m in api.get("/v2/dicts/communications-methods").json()}
    assert names["call"] == "Звонок"  # the kept copy, for up to DICTS_CACHE_SECONDS
    later = time.monotonic() + 3601
    monkeypatch.setattr(dict_selectors.time, "monotonic", lambda: later)
    names = {m["code"]: (m["name"], m["is_active"]) for m in api.get("/v2/dicts/communications-methods").json()}
    assert names["call"] == ("Телефонный звонок", True) and names["visit"] == ("Визит", False)


def test_renderer_writes_what_drf_json_renderer_writes():
    data = {
        "utc": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "moscow": timezone.localtime(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        "uuid": uuid.UUID(int=1),
        "lazy": gettext_lazy("Created"),
        "decimal": decimal.Decimal("1.50"),
        "text": "Звонок",
        "status": Status.DONE,
    }
    assert json.loads(ORJSONRenderer().render(data)) == json.loads(JSONRenderer().render(data))
    assert ORJSONRenderer().render(None) == b""
