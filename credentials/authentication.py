"""Who is calling, in one indexed query per request: API keys and the identity provider's bearer tokens.

`Authorization: Token <key>`: the key's SHA-256 is looked up with its user and the user's
permissions (one statement; the permissions come back as arrays and fill the caches Django's
`ModelBackend` reads, so `user.has_perm()` needs no query). Once a minute per key and process,
the same statement also writes the key's last-used date, as a data-modifying CTE that the
database carries out only if the stored date is more than a minute old: a read costs one round
trip, and the row is written at most once a minute (see `LastUse`).

`Authorization: Bearer <JWT>`: verified against the provider's keys (credentials/oidc.py), then
the employee's user, permissions and groups in one statement the same way. Groups that differ
from the token's are set from it (a write, only when they changed); first sight makes the user.

Nothing that decides access is kept between requests: a key revoked, a user deactivated or a
permission changed in the admin applies from the client's next request (a verified token's
claims are kept, credentials/oidc.py, but its user and permissions are read every time).
Refusals are 401s whose `WWW-Authenticate` says why (RFC 6750).
"""

import functools
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from rest_framework import authentication, exceptions

# A module, not its names: DRF imports this class while communications_project.errors is being imported.
from communications_project import errors
from communications_project.authentication import quote, table, user_columns, user_from

from . import claims as claims_lib
from . import oidc
from .models import LAST_USED_RESOLUTION, MAX_KEY_LENGTH, ApiKey, ExternalIdentity, hash_key

REALM = "communications"
API_KEY_EXPIRED, API_KEY_REVOKED = "api_key_expired", "api_key_revoked"


class InvalidCredentials(exceptions.AuthenticationFailed):
    """A 401 that names its own challenge: `Bearer error="invalid_token", error_description="…"`."""

    def __init__(self, scheme: str, detail: str, code: str = "authentication_failed", error: str = "invalid_token"):
        super().__init__(detail=detail, code=code)
        description = detail.replace("\\", "").replace('"', "'")
        self.challenge = f'{scheme} realm="{REALM}", error="{error}", error_description="{description}"'


def challenges() -> str:
    """What a request without credentials is told it may use."""
    schemes = ["Token"] + (["Bearer"] if settings.OIDC_ISSUER else [])
    return ", ".join(f'{scheme} realm="{REALM}"' for scheme in schemes)


def _credentials(request, keyword: str) -> str | None:
    """The credentials after `keyword` in the Authorization header; None if another scheme."""
    parts = authentication.get_authorization_header(request).split()
    if not parts or parts[0].lower() != keyword.lower().encode():
        return None
    if len(parts) != 2:
        raise InvalidCredentials(
            keyword, f"Send one credential: Authorization: {keyword} <credential>.", error="invalid_request"
        )
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidCredentials(keyword, "The credential has characters no key or token has.") from None


# The statements, written once per process (the user's part: communications_project/authentication.py).

# The statement's own time, not its transaction's (now()): inside a transaction that began
# earlier, an expiry that has passed since must count as passed.
NOW = "statement_timestamp()"


class LastUse:
    """Which keys (or employees) this process wrote the last-used date of within the past minute.

    Their reads within it are a plain SELECT (cheaper to plan and to run); the first read after
    it carries the write again, which the database does only if the stored date is itself more
    than a minute old (another process may have written it meanwhile). So the date is at most
    about two minutes behind, and a row is written at most once a minute, however many processes.
    """

    MAX_KEPT = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._until: dict[tuple, float] = {}

    def due(self, who: tuple) -> bool:
        return self._until.get(who, 0.0) <= time.monotonic()

    def written(self, who: tuple) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._until) >= self.MAX_KEPT:
                self._until = {k: until for k, until in self._until.items() if until > now}
            self._until[who] = now + LAST_USED_RESOLUTION

    def forget(self) -> None:
        """As if a minute had passed (tests), or a new process."""
        with self._lock:
            self._until.clear()


LAST_USE = LastUse()


@functools.cache
def _api_key_statement(write_last_used: bool) -> tuple[str, list[str], list[str]]:
    user_model = get_user_model()
    key, user = table(ApiKey), table(user_model)
    key_fields = ApiKey._meta.concrete_fields
    user_sql, user_names = user_columns()
    used = f"""
        WITH used AS (
            UPDATE {key} SET date_last_used = {NOW}
            WHERE key_hash = %(hash)s AND date_revoked IS NULL AND (date_expires IS NULL OR date_expires > {NOW})
              AND (date_last_used IS NULL OR date_last_used < {NOW} - interval '{LAST_USED_RESOLUTION} seconds')
              AND EXISTS (SELECT 1 FROM {user} WHERE id = {key}.user_id AND is_active)
            RETURNING 1
        )"""
    sql = f"""{used if write_last_used else ""}
        SELECT {", ".join(f"k.{quote(f.column)}" for f in key_fields)}, {user_sql}
        FROM {key} k JOIN {user} u ON u.id = k.user_id
        WHERE k.key_hash = %(hash)s
    """
    return sql, [f.attname for f in key_fields], user_names


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`: the service's API keys, migrated DRF tokens included."""

    keyword = "Token"

    def authenticate(self, request):
        key = _credentials(request, self.keyword)
        if key is None:
            return None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str):
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidCredentials(self.keyword, "Invalid API key.")
        if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
            api_key = self._read_with_orm(hash_key(key))
        else:
            key_hash = hash_key(key)
            due = LAST_USE.due(("key", key_hash))
            sql, key_names, user_names = _api_key_statement(due)
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute(sql, {"hash": key_hash})
                row = cursor.fetchone()
            if row is None:
                raise InvalidCredentials(self.keyword, "Invalid API key.")
            api_key = ApiKey.from_db(DEFAULT_DB_ALIAS, key_names, row[: len(key_names)])
            api_key.user = user_from(row[len(key_names) :], user_names)
        if api_key.date_revoked is not None:
            raise InvalidCredentials(self.keyword, "The API key has been revoked.", code=API_KEY_REVOKED)
        if api_key.date_expires is not None and api_key.date_expires <= timezone.now():
            raise InvalidCredentials(self.keyword, "The API key has expired.", code=API_KEY_EXPIRED)
        if not api_key.user.is_active:
            raise InvalidCredentials(self.keyword, "User inactive or deleted.")
        LAST_USE.written(("key", api_key.key_hash))
        return api_key.user, api_key

    def _read_with_orm(self, key_hash: str) -> ApiKey:
        """The SQLite demo: the same answers in a few queries."""
        api_key = ApiKey.objects.select_related("user").filter(key_hash=key_hash).first()
        if api_key is None:
            raise InvalidCredentials(self.keyword, "Invalid API key.")
        now = timezone.now()
        stale = api_key.date_last_used is None or (now - api_key.date_last_used).total_seconds() > LAST_USED_RESOLUTION
        if api_key.status(now) == "active" and api_key.user.is_active and stale:
            ApiKey.objects.filter(pk=api_key.pk).update(date_last_used=now)
        return api_key

    def authenticate_header(self, request):
        return challenges()


def _text_array(values: tuple[str, ...]) -> str:
    """A constant text[] for SQL: the mapped group names, written into the statement (a list passed
    as a parameter is adapted on every request; these change only with the settings)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"ARRAY[{quoted}]::text[]"


@functools.cache
def _identity_statement(write_last_seen: bool, managed: tuple[str, ...]) -> tuple[str, list[str]]:
    """The employee's user, then the names of the mapped groups they are in, then of those that exist."""
    user_model = get_user_model()
    identity, user = table(ExternalIdentity), table(user_model)
    user_groups = table(user_model._meta.get_field("groups").remote_field.through)
    user_sql, user_names = user_columns()
    seen = f"""
        WITH seen AS (
            UPDATE {identity} SET date_last_seen = {NOW}
            WHERE issuer = %(issuer)s AND subject = %(subject)s
              AND (date_last_seen IS NULL OR date_last_seen < {NOW} - interval '{LAST_USED_RESOLUTION} seconds')
            RETURNING 1
        )"""
    sql = f"""{seen if write_last_seen else ""}
        SELECT {user_sql},
               ARRAY(SELECT g.name FROM {user_groups} ug JOIN {table(Group)} g ON g.id = ug.group_id
                     WHERE ug.user_id = u.id AND g.name = ANY({_text_array(managed)})),
               ARRAY(SELECT g.name FROM {table(Group)} g WHERE g.name = ANY({_text_array(managed)}))
        FROM {identity} i JOIN {user} u ON u.id = i.user_id
        WHERE i.issuer = %(issuer)s AND i.subject = %(subject)s
    """
    return sql, user_names


class BearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>`: an access token from the identity provider (OIDC_ISSUER)."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = _credentials(request, self.keyword)
        if token is None:
            return None
        config = oidc.Config.from_settings()
        if config is None:
            raise InvalidCredentials(self.keyword, "This service is configured to accept no bearer tokens.")
        try:
            verified = oidc.verify(token, config)
            employee = claims_lib.Employee(
                issuer=config.issuer,
                subject=claims_lib.subject_from(verified, settings.OIDC_USERNAME_CLAIM),
                groups=claims_lib.groups_from(verified, settings.OIDC_GROUPS_CLAIM, settings.OIDC_GROUPS_MAP),
                dealer_uuids=claims_lib.dealer_uuids_from(verified, settings.OIDC_DEALERS_CLAIM),
                expires_at=verified["exp"],
            )
        except oidc.TokenRejected as rejected:
            raise InvalidCredentials(self.keyword, rejected.description, code=rejected.code) from None
        except oidc.ProviderUnavailable as unavailable:
            raise errors.as_api_exception(
                errors.IdentityProviderUnavailable(retry_after=unavailable.retry_after)
            ) from None
        user = self._user(employee)
        if not user.is_active:
            raise InvalidCredentials(self.keyword, "User inactive or deleted.")
        return user, employee

    def _user(self, employee: claims_lib.Employee):
        from . import services  # not at import time: see the import of errors above

        managed = tuple(sorted(set(settings.OIDC_GROUPS_MAP.values())))
        found = self._read(employee, managed)
        if found is None:
            try:
                return services.identity_create(
                    issuer=employee.issuer, subject=employee.subject, groups=employee.groups
                )
            except services.IdentityConflict as conflict:
                raise InvalidCredentials(self.keyword, conflict.detail, code=conflict.code) from None
        user, current, existing = found
        granted = employee.groups & existing  # a mapped group that does not exist here grants nothing
        if current != granted:
            # The token is the source of the groups the mapping manages: set them, and let Django
            # read the permissions they now give (those read above were the old groups').
            services.identity_groups_set(user=user, managed=managed, granted=granted)
            user = get_user_model().objects.get(pk=user.pk)
        # Issue 18 (the dealership scope), when it lands: the user's dealerships come with
        # user_columns() (communications_project/authentication.py: one more array column, read
        # for every credential); here, where they differ from employee.dealer_uuids, they are set
        # from the token through the scope's service, as the groups are above (a write only when
        # they changed), and identity_create() sets them on first sight.
        return user

    def _read(self, employee: claims_lib.Employee, managed: tuple[str, ...]):
        """(user, the mapped groups they are in, the mapped groups that exist), by name; or None."""
        if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":  # the SQLite demo: Django's queries
            identities = ExternalIdentity.objects.filter(issuer=employee.issuer, subject=employee.subject)
            identity = identities.select_related("user").first()
            if identity is None:
                return None
            identities.update(date_last_seen=timezone.now())
            user = identity.user
            current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
            return user, current, set(Group.objects.filter(name__in=managed).values_list("name", flat=True))
        who = ("identity", employee.issuer, employee.subject)
        sql, user_names = _identity_statement(LAST_USE.due(who), managed)
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(sql, {"issuer": employee.issuer, "subject": employee.subject})
            row = cursor.fetchone()
        if row is None:
            return None
        LAST_USE.written(who)
        return user_from(row[:-2], user_names), set(row[-2]), set(row[-1])

    def authenticate_header(self, request):
        return challenges()
