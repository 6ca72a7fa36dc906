import pytest
from django.contrib.auth.models import Permission

from communications.tests.factories import UserFactory


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
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return user

    return make
