"""The user of a request and everything the request needs of them, in the authentication's one query.

Django's permission check reads the user's permissions and their groups' permissions: two queries
more on every request. The credentials' statements (credentials/authentication.py: API keys,
bearer tokens) select `user_columns()` instead: the user's columns, then their two permission
sets as arrays; `user_from()` makes the user of those and fills the caches Django's
`ModelBackend` reads, so `user.has_perm()` needs no query. Written once per process; nothing is
kept between requests, so a permission granted or taken away in the admin applies from the
client's next request. Whatever else a request needs of its user in every request belongs here,
as one more column, so that every credential gets it.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections


def quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


def table(model) -> str:
    return quote(model._meta.db_table)


def user_columns(user: str = "u") -> tuple[str, list[str]]:
    """SQL for the columns of the user table aliased `user`, then their permission names (own, and
    through their groups) as two arrays; and the user's attribute names, for `user_from()`."""
    user_model = get_user_model()
    user_id = f"{user}.{quote(user_model._meta.pk.column)}"
    user_permissions = user_model._meta.get_field("user_permissions").remote_field.through
    user_groups = user_model._meta.get_field("groups").remote_field.through
    names = (
        f"SELECT ct.app_label || '.' || p.codename FROM {table(Permission)} p"
        f" JOIN {table(ContentType)} ct ON ct.id = p.content_type_id"
    )
    fields = user_model._meta.concrete_fields
    sql = f"""{", ".join(f"{user}.{quote(f.column)}" for f in fields)},
               ARRAY({names} JOIN {table(user_permissions)} up ON up.permission_id = p.id
                     WHERE up.user_id = {user_id}),
               ARRAY({names} JOIN {table(Group.permissions.through)} gp ON gp.permission_id = p.id
                     JOIN {table(user_groups)} ug ON ug.group_id = gp.group_id WHERE ug.user_id = {user_id})"""
    return sql, [f.attname for f in fields]


def user_from(row, names: list[str]):
    """The user whose `user_columns()` start `row`, their permission caches filled."""
    user = get_user_model().from_db(DEFAULT_DB_ALIAS, names, row[: len(names)])
    own, through_groups = row[len(names)], row[len(names) + 1]
    if not user.is_superuser:  # has_perm() answers yes without a query; ModelBackend lists every permission
        # The caches django.contrib.auth.backends.ModelBackend fills on first use.
        user._user_perm_cache, user._group_perm_cache = set(own), set(through_groups)
        user._perm_cache = user._user_perm_cache | user._group_perm_cache
    return user
