from django.db.models import QuerySet

from communications.models import Communication

from .models import CallLog

CALLS_SHOWN = 100  # a communication has a handful of calls; a runaway script cannot make the card slow


def call_list(*, communication: Communication) -> QuerySet[CallLog]:
    """The communication's call attempts, newest first."""
    return CallLog.objects.filter(communication=communication).order_by("-date_requested", "-id")[:CALLS_SHOWN]


def mask_phone(phone: str) -> str:
    """+79161234567 → +7916*****67: enough to recognise a number, not to dial it."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 7) + phone[-2:]
