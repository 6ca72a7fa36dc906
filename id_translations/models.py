from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

ORACLE_ID_MAX = 2**63 - 1


def parse_oracle_id(text: str) -> int | None:
    """An Oracle ID typed or read as text, or None: ASCII digits only ("²" and "١٢" are digits to
    str.isdigit() and int()), from 1 to ORACLE_ID_MAX (a bigint)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0")
    if len(digits) > 19:  # above ORACLE_ID_MAX (and int() refuses more than 4,300 digits)
        return None
    value = int(digits or "0")
    return value if 1 <= value <= ORACLE_ID_MAX else None


class IdTranslation(models.Model):
    """One communication's identity in both systems: Flora UUID ⇄ legacy Oracle ID.

    Both sides are unique. A pair may arrive before its communication is imported, so there is no
    foreign key to Communication.
    """

    flora_uuid = models.UUIDField(_("Flora UUID"), unique=True)
    oracle_id = models.BigIntegerField(_("Oracle ID"), unique=True)
    # Set by the database, so bulk paths (COPY) need not send it.
    date_created = models.DateTimeField(_("created"), db_default=Now(), editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = _("ID translation")
        verbose_name_plural = _("ID translations")
        constraints = [
            models.CheckConstraint(condition=Q(oracle_id__gt=0), name="idt_oracle_id_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.flora_uuid} ⇄ {self.oracle_id}"
