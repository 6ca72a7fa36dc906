"""Small pieces of HTML and short formats every screen shares (the list, the page, the inlines)."""

import datetime as dt
import uuid as uuid_lib

from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import OPEN_STATUSES, Communication, Kind, Status


def status_badge(status: str) -> SafeString:
    return format_html('<span class="badge status-{}">{}</span>', status, Status(status).label)


def is_overdue(communication: Communication) -> bool:
    """The condition of the "overdue" filter, for one row already read."""
    return (
        communication.kind == Kind.PLANNED
        and communication.status in OPEN_STATUSES
        and not communication.is_deleted
        and communication.date_planned_start is not None
        and communication.date_planned_start < timezone.now()
    )


def overdue_badge() -> SafeString:
    return format_html('<span class="badge overdue" title="{}">!</span>', _("overdue"))


def short_uuid(value: uuid_lib.UUID | None) -> str:
    return str(value)[:8] if value else ""


def short_datetime(value: dt.datetime | None) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""
