"""The benchmark's baseline: main's DRF token authentication before issue 21, kept only here.

`Authorization: DRFToken <key>` (its own keyword, so it can sit beside the API keys' `Token`):
the plain-text DRF token looked up in one indexed query with its user and the user's
permissions, exactly as communications_project/authentication.py did. bench/settings.py installs
rest_framework.authtoken and puts this class first; the product no longer has either.

Main's docstring follows.

Token authentication in one indexed query: the token, its user and the user's permissions.

DRF's `TokenAuthentication` reads the token with its user; Django's permission check then reads the
user's permissions and the user's groups' permissions: three queries on every request. Here the two
permission sets come back with the token as arrays (one statement, written once per process) and
fill the caches `ModelBackend` reads, so `user.has_perm()` needs no query. Nothing is kept between
requests: a permission granted or taken away in admin applies from the client's next request.
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router
from rest_framework import authentication, exceptions


@functools.cache
def _statement(alias: str) -> tuple[str, list[str], list[str]]:
    """The SQL (PostgreSQL) and the attribute names of the token's and the user's columns."""
    from rest_framework.authtoken.models import Token

    q = connections[alias].ops.quote_name
    user_model = get_user_model()

    def table(model) -> str:
        return q(model._meta.db_table)

    token_fields, user_fields = Token._meta.concrete_fields, user_model._meta.concrete_fields
    user_id = f"u.{q(user_model._meta.pk.column)}"
    user_permissions = user_model._meta.get_field("user_permissions").remote_field.through
    user_groups = user_model._meta.get_field("groups").remote_field.through
    names = (
        f"SELECT ct.app_label || '.' || p.codename FROM {table(Permission)} p"
        f" JOIN {table(ContentType)} ct ON ct.id = p.content_type_id"
    )
    sql = f"""
        SELECT {", ".join(f"t.{q(f.column)}" for f in token_fields)},
               {", ".join(f"u.{q(f.column)}" for f in user_fields)},
               ARRAY({names} JOIN {table(user_permissions)} up ON up.permission_id = p.id
                     WHERE up.user_id = {user_id}),
               ARRAY({names} JOIN {table(Group.permissions.through)} gp ON gp.permission_id = p.id
                     JOIN {table(user_groups)} ug ON ug.group_id = gp.group_id WHERE ug.user_id = {user_id})
        FROM {table(Token)} t JOIN {table(user_model)} u ON {user_id} = t.{q(Token._meta.get_field("user").column)}
        WHERE t.{q(Token._meta.pk.column)} = %s
    """
    return sql, [f.attname for f in token_fields], [f.attname for f in user_fields]


class TokenAuthentication(authentication.TokenAuthentication):
    keyword = "DRFToken"

    def authenticate_credentials(self, key):
        model = self.get_model()
        alias = router.db_for_read(model)
        if connections[alias].vendor != "postgresql":  # the SQLite demo: DRF's own, three queries
            return super().authenticate_credentials(key)
        sql, token_names, user_names = _statement(alias)
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = model.from_db(alias, token_names, row[: len(token_names)])
        user = get_user_model().from_db(alias, user_names, row[len(token_names) : -2])
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if user.is_superuser:
            return user, token  # has_perm() answers yes without a query; ModelBackend lists every permission
        # The caches django.contrib.auth.backends.ModelBackend fills on first use.
        user._user_perm_cache, user._group_perm_cache = set(row[-2]), set(row[-1])
        user._perm_cache = user._user_perm_cache | user._group_perm_cache
        return user, token
