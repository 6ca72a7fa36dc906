"""Models of the project floor: what several apps share."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyKey(models.Model):
    """The first answer to a request sent with an `Idempotency-Key`, replayed to its retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # What the key applies to, e.g. "POST /v2/communications": one key, one operation.
    scope = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    date_created = models.DateTimeField()
    date_expires = models.DateTimeField(db_index=True)
    # Null while the first request is still running.
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    response_location = models.CharField(max_length=500, blank=True)

    class Meta:
        # Created by the communications app; kept under its first name when it moved here.
        db_table = "communications_idempotencykey"
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
