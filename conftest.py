import pytest
from django.contrib.auth.models import Permission

from communications.tests.factories import UserFactory

# The admin's browser fixtures (`browser`, `logged_in`) and screenshots of failed browser tests.
pytest_plugins = ["communications.tests.browser"]


@pytest.fixture(autouse=True)
def _fresh_dictionaries():
    """Each test reads the methods dictionary its own database holds, not one an earlier test kept."""
    from dicts import selectors

    selectors.forget()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def user_with_perms(db):
    """A user holding exactly the permissions named: user_with_perms("communications.view_communication")."""

    def make(*perms: str, **kwargs):
        user = UserFactory(**kwargs)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return user

    return make


ALL_COMMUNICATION_PERMS = (
    "communications.view_communication",
    "communications.add_communication",
    "communications.change_communication",
    "communications.delete_communication",
)


@pytest.fixture
def api(api_as):
    """An API client authenticated by an API key as a service holding every communications permission."""
    return api_as(*ALL_COMMUNICATION_PERMS)


@pytest.fixture
def api_key_for(db):
    """api_key_for(user) -> a new API key of that user (the key itself, as a client sends it)."""
    from credentials import services

    def make(user, **kwargs) -> str:
        return services.api_key_create(user=user, name=kwargs.pop("name", "tests"), **kwargs)[1]

    return make


@pytest.fixture
def api_as(user_with_perms, api_key_for):
    """api_as("communications.view_communication") -> a client holding just those permissions."""
    from rest_framework.test import APIClient

    def make(*perms: str):
        user = user_with_perms(*perms)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
        client.user = user
        return client

    return make


# What every API request authenticated by a key or a bearer token costs before the view runs: one
# query for the key (or the employee), its user and the user's permissions
# (credentials/authentication.py). Budgets add this.
AUTH_QUERIES = 1
