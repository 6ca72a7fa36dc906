"""Writes of ID translations: all-or-nothing, idempotent for identical pairs, safe under races."""

import uuid as uuid_lib
from dataclasses import dataclass

from django.db import connection, transaction
from rest_framework import status

from communications_project.errors import DomainError

from .models import IdTranslation

Pair = tuple[uuid_lib.UUID, int]


class TranslationConflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "translation_conflict"


@dataclass(frozen=True)
class CreateResult:
    pairs: list[Pair]  # as asked, de-duplicated, in request order
    created: int


def _as_dict(pair: Pair) -> dict:
    return {"flora_uuid": str(pair[0]), "oracle_id": pair[1]}


def _request_conflicts(pairs: list[Pair]) -> list[Pair]:
    """Pairs of one request that map a side twice."""
    by_uuid: dict[uuid_lib.UUID, int] = {}
    by_id: dict[int, uuid_lib.UUID] = {}
    clashing: set[Pair] = set()
    for flora_uuid, oracle_id in pairs:
        if by_uuid.setdefault(flora_uuid, oracle_id) != oracle_id:
            clashing |= {(flora_uuid, oracle_id), (flora_uuid, by_uuid[flora_uuid])}
        if by_id.setdefault(oracle_id, flora_uuid) != flora_uuid:
            clashing |= {(flora_uuid, oracle_id), (by_id[oracle_id], oracle_id)}
    return [pair for pair in pairs if pair in clashing]


def existing_conflicts(pairs: list[Pair]) -> list[Pair]:
    """Stored pairs that contradict one of `pairs` (a side already mapped elsewhere)."""
    asked = set(pairs)
    rows = (
        IdTranslation.objects.filter(flora_uuid__in=[p[0] for p in pairs])
        .values_list("flora_uuid", "oracle_id")
        .union(IdTranslation.objects.filter(oracle_id__in=[p[1] for p in pairs]).values_list("flora_uuid", "oracle_id"))
    )
    return sorted({row for row in rows if row not in asked}, key=lambda row: row[1])


def _insert_missing(pairs: list[Pair], actor) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent identical insert is not an error."""
    table = IdTranslation._meta.db_table
    uuid_field = IdTranslation._meta.get_field("flora_uuid")
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    rows = [
        (uuid_field.get_db_prep_value(flora_uuid, connection), oracle_id, actor_id) for flora_uuid, oracle_id in pairs
    ]
    placeholders = ", ".join(["(%s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (flora_uuid, oracle_id, created_by_id) VALUES {placeholders} ON CONFLICT DO NOTHING",
            [value for row in rows for value in row],
        )
        return cursor.rowcount


@transaction.atomic
def translations_create(*, pairs: list[Pair], actor) -> CreateResult:
    """Create every pair or none. Identical existing pairs are fine; contradicting ones are a 409."""
    pairs = list(dict.fromkeys(pairs))
    clashing = _request_conflicts(pairs)
    if clashing:
        raise TranslationConflict(
            "The request maps one UUID or Oracle ID to two different values.",
            extra={"conflicts": [_as_dict(pair) for pair in clashing]},
        )
    created = _insert_missing(pairs, actor)
    # Whatever a concurrent writer did, the stored rows now decide: each asked pair is there
    # exactly, or a side of it is taken by another pair.
    conflicts = existing_conflicts(pairs)
    if conflicts:  # raising rolls back what this call inserted
        raise TranslationConflict(
            "A UUID or Oracle ID is already mapped to another value; nothing was created.",
            extra={"conflicts": [_as_dict(pair) for pair in conflicts]},
        )
    return CreateResult(pairs=pairs, created=created)
