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
    """An API client authenticated by token as a service holding every communications permission."""
    return api_as(*ALL_COMMUNICATION_PERMS)


@pytest.fixture
def api_as(user_with_perms):
    """api_as("communications.view_communication") -> a client holding just those permissions."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(*perms: str):
        user = user_with_perms(*perms)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user
        return client

    return make


# What every token-authenticated API request costs before the view runs: one query for the token,
# its user and the user's permissions (communications_project/authentication.py). Budgets add this.
AUTH_QUERIES = 1
