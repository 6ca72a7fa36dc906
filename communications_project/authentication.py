"""Token authentication in one indexed query: the token, its user and the user's permissions.

DRF's `TokenAuthentication` reads the token with its user; Django's permission check then reads the
user's permissions and the user's groups' permissions: three queries on every request. Here the two
permission sets come back with the token as arrays, and fill the caches `ModelBackend` reads, so
`user.has_perm()` needs no query. Nothing is kept between requests: a permission granted or taken
away in admin applies from the client's next request.
"""

from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import F, OuterRef, Value
from django.db.models.functions import Concat
from rest_framework import authentication, exceptions


def _permissions(**relation) -> "ArraySubquery":  # noqa: F821
    from django.contrib.postgres.expressions import ArraySubquery

    names = Permission.objects.filter(**relation).values_list(
        Concat(F("content_type__app_label"), Value("."), F("codename"))
    )
    return ArraySubquery(names)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        if connection.vendor != "postgresql":  # the SQLite demo: DRF's own, three queries
            return super().authenticate_credentials(key)
        token = (
            self.get_model()
            .objects.select_related("user")
            .annotate(
                user_perms=_permissions(user=OuterRef("user_id")),
                group_perms=_permissions(group__user=OuterRef("user_id")),
            )
            .filter(key=key)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if user.is_superuser:
            return user, token  # has_perm() answers yes without a query; ModelBackend lists every permission
        # The caches django.contrib.auth.backends.ModelBackend fills on first use.
        user._user_perm_cache = set(token.user_perms)
        user._group_perm_cache = set(token.group_perms)
        user._perm_cache = user._user_perm_cache | user._group_perm_cache
        return user, token
