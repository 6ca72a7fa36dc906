"""Every write to credentials: making and revoking API keys, the provider's users and their groups."""

import datetime as dt
import logging
import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from communications_project.errors import DomainError, NotFound

from .models import ApiKey, ExternalIdentity, generate_key, hash_key, key_prefix

log = logging.getLogger(__name__)

_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# A key that outlives this is one nobody rotates; make such keys without an expiry, on purpose.
MAX_LIFETIME = dt.timedelta(days=3650)


class InvalidDuration(DomainError):
    code = "invalid_duration"
    default_detail = "Give a duration such as 90d, 12h, 30m or 4w."


def parse_duration(text: str) -> dt.timedelta:
    """`90d` -> 90 days; minutes (m), hours (h), days (d), weeks (w); at most ten years."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidDuration()
    duration = dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if duration > MAX_LIFETIME:
        raise InvalidDuration("A key may live ten years at most; leave the expiry out for one that never expires.")
    return duration


def api_key_create(*, user, name: str, expires_at: dt.datetime | None = None, created_by=None) -> tuple[ApiKey, str]:
    """A new key for `user`: the row, and the key itself, which is shown now and never again."""
    if not name.strip():
        raise DomainError("An API key needs a name.")
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry must be in the future.")
    key = generate_key()
    api_key = ApiKey.objects.create(
        user=user,
        name=name.strip(),
        prefix=key_prefix(key),
        key_hash=hash_key(key),
        date_expires=expires_at,
        created_by=created_by,
    )
    log.info("api key created", extra={"prefix": api_key.prefix, "user": user.get_username()})
    return api_key, key


def api_key_revoke(*, prefix: str, revoked_by=None) -> tuple[ApiKey, bool]:
    """Revoke the key with this prefix; refused from the next request on. Returns (key, newly revoked)."""
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if api_key is None:
            raise NotFound(f"No API key has the prefix {prefix!r}.")
        if api_key.date_revoked is not None:
            return api_key, False
        api_key.date_revoked, api_key.revoked_by = timezone.now(), revoked_by
        api_key.save(update_fields=["date_revoked", "revoked_by"])
    log.info("api key revoked", extra={"prefix": api_key.prefix, "user": api_key.user.get_username()})
    return api_key, True


# The identity provider's users.


class IdentityConflict(DomainError):
    status_code = 401
    code = "identity_conflict"
    default_detail = "A local account already has this user name; an administrator must resolve it."


def identity_create(*, issuer: str, subject: str, groups: frozenset[str]):
    """The Django user for a subject seen for the first time: no password, no staff rights.

    Two first requests of one employee may race: the loser finds the winner's user.
    """
    user_model = get_user_model()
    try:
        with transaction.atomic():
            if user_model.objects.filter(username=subject).exists():
                if not ExternalIdentity.objects.filter(issuer=issuer, subject=subject).exists():
                    log.warning("identity conflict: a local account has the user name", extra={"user": subject})
                    raise IdentityConflict()
            user = user_model(username=subject)
            user.set_unusable_password()
            user.save()
            ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject, date_last_seen=timezone.now())
            user.groups.set(Group.objects.filter(name__in=groups))
    except IntegrityError:
        identity = ExternalIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
        if identity is None:
            raise
        return identity.user
    log.info("identity-provider user created", extra={"user": subject, "groups": sorted(groups)})
    return user


def identity_groups_set(*, user, managed: tuple[str, ...], granted: frozenset[str]) -> None:
    """The token decides the user's groups among those the mapping manages; others stay as they are."""
    with transaction.atomic():
        current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
        if current - granted:
            user.groups.remove(*Group.objects.filter(name__in=current - granted))
        if granted - current:
            user.groups.add(*Group.objects.filter(name__in=granted - current))
    log.info(
        "identity-provider user's groups changed",
        extra={"user": user.get_username(), "added": sorted(granted - current), "removed": sorted(current - granted)},
    )
