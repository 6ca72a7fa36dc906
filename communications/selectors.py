"""Reads of communications. Deleted communications are never found here (SPEC §6: 404).

The API's hot reads (GET one, the list, collections) take `.values()` rows of only the columns the
answer shows (`communication_rows`); model instances are for the rest (primary-info, history,
the answers of writes, telephony). Nothing here names a database: the router picks it.
"""

import functools
import threading
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Sequence

from django.db import connections, router
from django.db.models import BooleanField, Expression, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery

from communications_project.db import fall_back_to_primary
from communications_project.errors import NotFound
from communications_project.filters import parse_uuid
from id_translations.models import IdTranslation

from .models import Attempt, Communication, CommunicationHistory, Status


def oracle_id() -> Subquery:
    """A communication's Oracle ID, for `.annotate()`."""
    return Subquery(IdTranslation.objects.filter(flora_uuid=OuterRef("uuid")).values("oracle_id")[:1])


def _status_is(status: Status) -> Callable[[], Expression]:
    return lambda: ExpressionWrapper(Q(status=status), output_field=BooleanField())


# Columns of the rows that are not the table's own; any other name is a field path of `.values()`.
COMPUTED_COLUMNS: dict[str, Callable[[], Expression]] = {
    "oracle_id": oracle_id,
    "is_cancelled": _status_is(Status.CANCELLED),
    "is_failed": _status_is(Status.FAILED),
}


def communication_queryset() -> QuerySet[Communication]:
    """Alive communications as model instances, with what the full view shows joined in (one query)."""
    return (
        Communication.objects.alive()
        .select_related("method", "created_by", "updated_by")
        .annotate(oracle_id=oracle_id())
    )


def communication_rows(columns: Sequence[str]) -> QuerySet[dict]:
    """Alive communications as `.values()` dicts of just these columns (see COMPUTED_COLUMNS)."""
    return _rows_query(tuple(columns)).all()  # a copy: the kept one is never evaluated


@functools.cache
def _rows_query(columns: tuple[str, ...]) -> QuerySet[dict]:
    """Built once per column list (building it is a third of a list page's CPU); names no database."""
    computed = {name: COMPUTED_COLUMNS[name]() for name in columns if name in COMPUTED_COLUMNS}
    return Communication.objects.alive().annotate(**computed).values(*columns)


def _parse_uuid(value: str | uuid_lib.UUID) -> uuid_lib.UUID | None:
    """The communication's UUID from a URL, in its canonical form only, as the schema states it."""
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return parse_uuid(str(value))
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


class _CompiledRowRead:
    """`communication_rows(columns).filter(uuid=...)`, compiled to SQL once; a read only runs it.

    Building and compiling the query costs more than running it (about 1 ms of CPU against 0.2).
    The UUID is the one parameter that changes; Django's own converters shape the result.
    """

    PLACEHOLDER = uuid_lib.UUID(int=0)

    def __init__(self, alias: str, columns: tuple[str, ...]):
        queryset = communication_rows(columns).using(alias).filter(uuid=self.PLACEHOLDER)
        query = queryset.query
        self.alias, self.compiler = alias, query.get_compiler(alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.slot = next(i for i, p in enumerate(self.params) if p in (self.PLACEHOLDER, self.PLACEHOLDER.hex))
        self.as_hex = isinstance(self.params[self.slot], str)
        self.names = list(query.selected) if query.selected else [*query.values_select, *query.annotation_select]

    def fetch(self, uuid: uuid_lib.UUID) -> dict | None:
        params = list(self.params)
        params[self.slot] = uuid.hex if self.as_hex else uuid
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, params)
            found = cursor.fetchall()
        for row in self.compiler.results_iter(results=[found]):
            return dict(zip(self.names, row, strict=True))
        return None


_compiled = threading.local()  # per thread, as Django's connections are


def _compiled_row_read(columns: Sequence[str]) -> _CompiledRowRead:
    """For the database the router picks now (the replica inside a replica read)."""
    key = (router.db_for_read(Communication), tuple(columns))
    reads = _compiled.__dict__.setdefault("reads", {})
    if key not in reads:
        reads[key] = _CompiledRowRead(*key)
    return reads[key]


def communication_row(uuid: str | uuid_lib.UUID, columns: Sequence[str]) -> dict:
    """One alive communication as `communication_rows(columns)` gives it; NotFound if none."""
    parsed = _parse_uuid(uuid)
    row = _compiled_row_read(columns).fetch(parsed) if parsed else None
    if row is None and parsed and fall_back_to_primary():  # the replica may not have it yet
        row = _compiled_row_read(columns).fetch(parsed)
    if row is None:
        raise NotFound("Communication not found.")
    return row


def communications_by_uuids(uuids: Iterable[uuid_lib.UUID], columns: Sequence[str]) -> dict[uuid_lib.UUID, dict]:
    """Rows of these communications by UUID; `columns` must include "uuid"."""
    return {row["uuid"]: row for row in communication_rows(columns).filter(uuid__in=list(uuids))}


def communication_history(communication: Communication | uuid_lib.UUID) -> QuerySet[CommunicationHistory]:
    return (
        CommunicationHistory.objects.filter(communication=communication).select_related("actor").order_by("date", "id")
    )


ATTEMPTS_SHOWN = 100  # with the policy a communication has a few; a runaway script cannot make the card slow


def attempt_list(communication: Communication | uuid_lib.UUID) -> QuerySet[Attempt]:
    """The communication's attempts, newest first (at most ATTEMPTS_SHOWN; `attempts_count` counts all)."""
    return (
        Attempt.objects.filter(communication=communication)
        .select_related("created_by")
        .order_by("-date", "-date_created")[:ATTEMPTS_SHOWN]
    )
