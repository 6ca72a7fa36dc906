"""Reads of communications. Deleted communications are never found here (SPEC §6: 404)."""

import uuid as uuid_lib
from collections.abc import Iterable

from django.db.models import OuterRef, QuerySet, Subquery

from communications_project.db import fall_back_to_primary
from communications_project.errors import NotFound
from id_translations.models import IdTranslation

from .models import Communication, CommunicationHistory


def communication_queryset() -> QuerySet[Communication]:
    """What the API reads: alive rows, with what the full view shows joined in (one query)."""
    oracle_id = IdTranslation.objects.filter(flora_uuid=OuterRef("uuid")).values("oracle_id")[:1]
    return (
        Communication.objects.alive()
        .select_related("method", "created_by", "updated_by")
        .annotate(oracle_id=Subquery(oracle_id))
    )


def _parse_uuid(value: str | uuid_lib.UUID) -> uuid_lib.UUID | None:
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return uuid_lib.UUID(str(value))
    except ValueError:
        return None


def communication_get(uuid: str | uuid_lib.UUID) -> Communication:
    parsed = _parse_uuid(uuid)
    communication = communication_queryset().filter(uuid=parsed).first() if parsed else None
    if communication is None and parsed and fall_back_to_primary():  # the replica may not have it yet
        communication = communication_queryset().filter(uuid=parsed).first()
    if communication is None:
        raise NotFound("Communication not found.")
    return communication


def communications_by_uuids(uuids: Iterable[uuid_lib.UUID]) -> dict[uuid_lib.UUID, Communication]:
    return {c.uuid: c for c in communication_queryset().filter(uuid__in=list(uuids))}


def communication_history(communication: Communication) -> QuerySet[CommunicationHistory]:
    return (
        CommunicationHistory.objects.filter(communication=communication).select_related("actor").order_by("date", "id")
    )
