"""Who may call the API: API keys (hashed at rest) and the identities the company's provider vouches for.

An API key is shown once, when it is made; the table keeps only its SHA-256 and a short prefix
to recognise it by. SHA-256 without a password hasher's work factor is the standard for keys like
these (GitHub's, Stripe's): the secret is 256 random bits, so nothing is gained by slowing each
guess, and every request would pay for it. No pepper either: the hash alone gives nothing back,
and a second secret to rotate would make every key depend on it.
"""

import hashlib
import secrets
import string

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# Every key the service makes starts with this: people and secret scanners can tell what it is.
KEY_MARK = "cmk_"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 8
SECRET_BYTES = 32
# How long a key may be, sent in a header: longer is refused before the database is asked.
MAX_KEY_LENGTH = 128
# The visible prefix of a key made here: "cmk_" and 8 characters (of a migrated DRF token: its first 8).
PREFIX_LENGTH = len(KEY_MARK) + _ID_LENGTH
LEGACY_PREFIX_LENGTH = 8
# The last-used date is written at most this often per key (seconds), not on every request.
LAST_USED_RESOLUTION = 60


def generate_key() -> str:
    """A new key: `cmk_` + 8 characters to recognise it by + `_` + 43 characters of secret."""
    identifier = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    return f"{KEY_MARK}{identifier}_{secrets.token_urlsafe(SECRET_BYTES)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH] if key.startswith(KEY_MARK) else key[:LEGACY_PREFIX_LENGTH]


class ApiKeyStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    EXPIRED = "expired", _("expired")
    REVOKED = "revoked", _("revoked")


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100, help_text=_("What the key is for, e.g. “CRM front end”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("SHA-256 of the key"), max_length=64, unique=True, editable=False)
    date_created = models.DateTimeField(pgettext_lazy("api key", "created"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    date_expires = models.DateTimeField(_("expires"), null=True, blank=True)
    date_last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    date_revoked = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-date_created"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def status(self, now=None) -> str:
        if self.date_revoked is not None:
            return ApiKeyStatus.REVOKED
        if self.date_expires is not None and self.date_expires <= (now or timezone.now()):
            return ApiKeyStatus.EXPIRED
        return ApiKeyStatus.ACTIVE


class ExternalIdentity(models.Model):
    """An employee the identity provider vouches for, tied to the Django user made on first sight.

    Only users made this way are matched by a bearer token: a local account (an operator, a
    service user) is never taken over by a token whose claim happens to carry its username.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="external_identity",
        verbose_name=_("user"),
    )
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(
        _("subject"), max_length=255, help_text=_("The value of the claim users are matched by.")
    )
    date_created = models.DateTimeField(_("first seen"), default=timezone.now)
    date_last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("identity-provider user")
        verbose_name_plural = _("identity-provider users")
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique")]

    def __str__(self) -> str:
        return self.subject
