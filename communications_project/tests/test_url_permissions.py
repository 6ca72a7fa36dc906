"""Every route the URL configuration serves, with the permission each method needs.

The routes are read from the URL configuration, not listed by hand: a new endpoint fails
`test_every_route_is_in_the_table` until it is added to PERMISSIONS (or to EXEMPT, with a reason).
Then, for each method of each route: 401 without credentials, 403 for a user holding every
permission but the one needed, and neither with only that permission.
"""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from communications.models import Kind
from communications.tests.factories import CommunicationFactory, UserFactory
from communications_project.api import allowed_methods

pytestmark = pytest.mark.django_db

AUTHENTICATED = "any authenticated user"
PBX_SECRET = "the X-Telephony-Secret header"
VIEW, ADD, CHANGE, DELETE = (f"communications.{p}_communication" for p in ("view", "add", "change", "delete"))

# (method, route) -> what it needs: a permission, AUTHENTICATED or PBX_SECRET.
PERMISSIONS = {
    ("POST", "v2/communications"): ADD,
    ("GET", "v3/communications"): VIEW,
    ("GET", "v3/communications/events"): "communications.view_communicationevent",
    ("POST", "v3/collections/communications"): VIEW,
    ("GET", "v2/communications/<str:uuid>"): VIEW,
    ("PATCH", "v2/communications/<str:uuid>"): CHANGE,
    ("DELETE", "v2/communications/<str:uuid>"): DELETE,
    ("GET", "v2/communications/<str:uuid>/primary-info"): VIEW,
    ("GET", "v2/communications/<str:uuid>/history"): VIEW,
    ("GET", "v2/communications/<str:uuid>/attempts"): VIEW,
    ("POST", "v2/communications/<str:uuid>/attempts"): CHANGE,
    ("GET", "v3/reports/lead-response"): "communications.view_reports",
    ("PATCH", "v2/communications/<str:uuid>/start"): CHANGE,
    ("PATCH", "v2/communications/<str:uuid>/close"): CHANGE,
    ("PATCH", "v2/communications/<str:uuid>/failed"): CHANGE,
    ("POST", "v2/communications/<str:uuid>/cancel"): CHANGE,
    ("POST", "v2/communications/<str:uuid>/call-phone"): "communications.call_phone",
    ("GET", "v2/communications/<str:uuid>/calls"): VIEW,
    ("GET", "v2/dicts/communications-statuses"): AUTHENTICATED,
    ("GET", "v2/dicts/communications-methods"): AUTHENTICATED,
    ("GET", "v1/communications/id-translations"): "id_translations.view_idtranslation",
    ("POST", "v1/communications/id-translations"): "id_translations.add_idtranslation",
    ("POST", "v2/telephony/events"): PBX_SECRET,
    ("GET", "api/schema"): AUTHENTICATED,
    ("GET", "api/docs"): AUTHENTICATED,
    ("GET", "api/redoc"): AUTHENTICATED,
}

# Routes outside the API's permission model, and why.
EXEMPT = {
    "healthz": "liveness probe: open, says nothing",
    "readyz": "readiness probe: open, says only ready or not",
    "metrics": "Prometheus: its own bearer token or allow-list (docs/OPERATIONS.md)",
    "admin/": "the Django admin: staff login and its own permissions (admin tests)",
    "i18n/": "Django's set_language: sets the language cookie, reads and writes no data",
}


def _routes(patterns=None, prefix: str = ""):
    """(route, view) for every URL pattern, with the prefixes of the includes it sits under."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route in EXEMPT:
                continue
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def _served() -> dict[tuple[str, str], object]:
    served = {}
    for route, view in _routes():
        if route in EXEMPT:
            continue
        methods = allowed_methods(view)
        assert methods is not None, f"{route}: not a class-based view; add it to EXEMPT with a reason"
        for method in methods - {"HEAD", "OPTIONS"}:
            served[(method, route)] = view
    return served


def test_every_route_is_in_the_table():
    served = set(_served())
    assert sorted(served - set(PERMISSIONS)) == [], "routes with no expected permission: add them to PERMISSIONS"
    assert sorted(set(PERMISSIONS) - served) == [], "PERMISSIONS names routes that are not served"


def _url(route: str, communication) -> str:
    return "/" + re.sub(r"<[^>]*uuid>", str(communication.uuid), route)


def _user_with(perms) -> APIClient:
    user = UserFactory()
    user.user_permissions.add(*perms)
    client = APIClient()
    client.force_authenticate(user)
    return client


def _all_permissions_but(name: str | None):
    permissions = Permission.objects.select_related("content_type")
    return [p for p in permissions if f"{p.content_type.app_label}.{p.codename}" != name]


def _permission(name: str):
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


CASES = [pytest.param(method, route, needs, id=f"{method} {route}") for (method, route), needs in PERMISSIONS.items()]


@pytest.mark.parametrize(("method", "route", "needs"), CASES)
def test_without_credentials_is_401(method, route, needs, settings):
    settings.TELEPHONY_EVENTS_SECRET = "pbx-secret"
    communication = CommunicationFactory(kind=Kind.PLANNED)
    response = APIClient().generic(method, _url(route, communication), "{}", content_type="application/json")
    assert response.status_code == 401, response.content
    assert "WWW-Authenticate" in response
    if not route.startswith("api/"):  # the schema pages answer in their own formats (YAML, HTML)
        assert response.json()["errors"][0]["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "route", "needs"), CASES)
def test_a_user_without_the_permission_is_403(method, route, needs, settings):
    settings.TELEPHONY_EVENTS_SECRET = "pbx-secret"
    communication = CommunicationFactory(kind=Kind.PLANNED)
    url = _url(route, communication)
    if needs == PBX_SECRET:
        # Even a superuser's session is not the PBX: only the shared secret authenticates.
        client = _user_with(_all_permissions_but(None))
        response = client.generic(method, url, "{}", content_type="application/json")
        assert response.status_code == 403, response.content
        assert response.json()["errors"][0]["code"] == "permission_denied"
        return
    if needs == AUTHENTICATED:
        response = _user_with([]).generic(method, url, "{}", content_type="application/json")
        assert response.status_code not in (401, 403) and response.status_code < 500, response.content
        return
    response = _user_with(_all_permissions_but(needs)).generic(method, url, "{}", content_type="application/json")
    assert response.status_code == 403, response.content
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert communication.__class__.objects.get(pk=communication.pk).version == communication.version
    # And the permission alone is enough to get past authorization.
    response = _user_with([_permission(needs)]).generic(method, url, "{}", content_type="application/json")
    assert response.status_code not in (401, 403) and response.status_code < 500, response.content


@pytest.mark.parametrize(
    ("method", "route"),
    [("TRACE", "v3/communications"), ("PUT", "v2/communications/<str:uuid>"), ("GET", "v2/communications")],
)
def test_a_method_the_route_does_not_serve_is_405_even_without_credentials(method, route):
    communication = CommunicationFactory()
    response = APIClient().generic(method, _url(route, communication))
    assert response.status_code == 405
    assert response.json()["errors"] == [
        {"code": "method_not_allowed", "detail": f'Method "{method}" not allowed.', "attr": None}
    ]
    assert "OPTIONS" in response["Allow"]
