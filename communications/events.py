"""The change feed (SPEC §10, docs/EVENTS.md): every change to a communication as a CloudEvent.

Writing. The services' history writer calls `record()` for each history entry, in the change's own
transaction: an event exists exactly when its change committed, one per change. `data` holds the
communication's full view as `GET /v2/communications/{uuid}` answers it, built from the instance
the write already holds (no query), beside the version, the changed fields, the transition, the
source and the actor. It is stored as JSON text and sent byte for byte over HTTP and AMQP.

Positions that never skip. An event's position is (`txid`, `id`): `txid` is the writing
transaction's ID (`pg_current_xact_id()`), `id` the row's serial. The feed serves only events whose
`txid` is below the oldest transaction that may still write one (`horizon()`: the oldest still
running in this database, read after the current snapshot; on a replica the snapshot's
`pg_snapshot_xmin()`): every transaction with a smaller ID has ended, so nothing can later appear
at or before a position already served. A serial or a timestamp alone is taken before commit, and a transaction that
commits late lands behind a consumer that has already passed it; that is the hole this closes.

Per communication, the feed follows the version. A transaction may have its ID from before it
waited for the communication's row lock (an import batch, an admin page that wrote first), so the
`txid` written is the larger of its own and that of the communication's previous event. That one
committed before this write got the lock, and a later write's `id` is larger, so (`txid`, `id`)
grows with the version. The gate still holds: the raised `txid` is at least the transaction's own.

Latency: an event appears once every transaction that started writing to this database before it
has ended (on a replica: in the whole cluster, which a standby cannot tell apart). A long write
transaction delays the feed; it never reorders it.

SQLite (the demo) has one writer at a time, so ids are handed out in commit order: `txid` is 0 and
the feed serves everything committed, in `id` order.

A cursor is 32 hex digits, `txid` and `id` as 16 each: opaque to consumers but ordered as a string,
so it is also the CloudEvents `sequence`.
"""

import datetime as dt
import re
import uuid as uuid_lib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import uuid_utils
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone
from uuid_utils.compat import uuid7

from communications_project.errors import DomainError
from communications_project.renderers import dumps

from .models import (
    Communication,
    CommunicationEvent,
    CommunicationHistory,
    EventMark,
    EventType,
    HistoryAction,
    Source,
    Status,
)

TYPES = {
    HistoryAction.CREATE: EventType.CREATED,
    HistoryAction.UPDATE: EventType.UPDATED,
    HistoryAction.TRANSITION: EventType.STATUS_CHANGED,
    HistoryAction.DELETE: EventType.DELETED,
    HistoryAction.RESTORE: EventType.RESTORED,
}

# The full view, field by field as GET /v2/communications/{uuid} shows it (CommunicationFullSerializer;
# tests hold the two equal): the API's name -> the attribute path on the instance.
VIEW = {
    "uuid": "uuid",
    "method": "method_id",
    "kind": "kind",
    "direction": "direction",
    "status": "status",
    "is_cancelled": "is_cancelled",
    "is_failed": "is_failed",
    "client_uuid": "client_uuid",
    "employee_uuid": "employee_uuid",
    "dealer_uuid": "dealer_uuid",
    "subject": "subject",
    "comment": "comment",
    "result": "result",
    "details": "details",
    "date_planned_start": "date_planned_start",
    "date_planned_finish": "date_planned_finish",
    "date_start": "date_start",
    "date_finish": "date_finish",
    "cancel_reason": "cancel_reason",
    "fail_reason": "fail_reason",
    "oracle_id": "oracle_id",  # annotated by the write's locking read; none on a fresh UUID
    "attempts_count": "attempts_count",
    "last_attempt_at": "last_attempt_at",
    "last_attempt_outcome": "last_attempt_outcome",
    "date_created": "date_created",
    "date_updated": "date_updated",
    "created_by": "created_by.username",
    "updated_by": "updated_by.username",
    "version": "version",
}
# History keys that the API names otherwise.
API_NAMES = {"method_id": "method"}

MAX_ID = 2**63 - 1
# Two 63-bit halves (transaction, event id): the pattern states what `parse` takes, to the digit.
CURSOR_RE = re.compile(r"^[0-7][0-9a-f]{15}[0-7][0-9a-f]{15}$")
PAGE_SIZE_MAX = 1000


class Position(NamedTuple):
    txid: int
    id: int

    @property
    def cursor(self) -> str:
        return f"{self.txid:016x}{self.id:016x}"

    @classmethod
    def parse(cls, cursor: str) -> "Position":
        if not CURSOR_RE.fullmatch(cursor):
            raise ValueError("A cursor is 32 lowercase hex digits, as `next`, `now` or an event's `sequence`.")
        txid, id_ = int(cursor[:16], 16), int(cursor[16:], 16)
        if txid > MAX_ID or id_ > MAX_ID:
            raise ValueError("Not a cursor of this feed.")
        return cls(txid, id_)


START = Position(0, 0)
PURGED = "purged"


class CursorExpired(DomainError):
    status_code = 410
    code = "cursor_expired"
    default_detail = (
        "Events after this cursor are no longer kept. Resynchronise: note `now` (in this answer), "
        "reload from GET /v3/communications or an export, then follow the feed with after=<now>."
    )


# Writing


def _in_zone(value: Any, zone) -> Any:
    return value.astimezone(zone) if isinstance(value, dt.datetime) else value


_PATHS = [(name, tuple(path.split("."))) for name, path in VIEW.items()]
# For `imported`, whose values are flat (no related instance): each name and its value's key.
_VIEW_NAMES = tuple(name for name, _ in _PATHS)
_IMPORTED_KEYS = tuple(path[0] for _, path in _PATHS)


def _attribute(communication: Communication, path: tuple[str, ...]) -> Any:
    value = communication
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def communication_view(communication: Communication) -> dict[str, Any]:
    """The full view of GET /v2/communications/{uuid}, from the instance a write holds."""
    zone = timezone.get_default_timezone()
    return {name: _in_zone(_attribute(communication, path), zone) for name, path in _PATHS}


def event_data(communication: Communication, entry: CommunicationHistory) -> dict[str, Any]:
    zone = timezone.get_default_timezone()
    transition = None
    if entry.transition:
        transition = {"name": entry.transition, "from": entry.status_from, "to": entry.status_to}
    return {
        "communication": communication_view(communication),
        "version": communication.version,
        "changes": {
            API_NAMES.get(field, field): [_in_zone(old, zone), _in_zone(new, zone)]
            for field, (old, new) in entry.changes.items()
        },
        "transition": transition,
        "source": entry.source,
        "actor": entry.actor.get_username() if entry.actor is not None else None,
    }


# The `txid` an event of a communication is written with (see the module's docstring).
ORDERING_TXID = {
    "postgresql": (
        "greatest(pg_current_xact_id()::text::bigint,"
        f" coalesce((SELECT max(txid) FROM {CommunicationEvent._meta.db_table} WHERE subject = %s), 0))"
    ),
    "sqlite": "0",
}
EVENT_COLUMNS = ("event_id", "type", "subject", "dealer_uuid", "time", "data")
# On every write: a plain statement, not a model save (a third of the write's CPU otherwise).
_INSERT = {
    vendor: f"INSERT INTO {CommunicationEvent._meta.db_table} (txid, {', '.join(EVENT_COLUMNS)})"
    f" VALUES ({txid}, {', '.join(['%s'] * len(EVENT_COLUMNS))})"
    for vendor, txid in ORDERING_TXID.items()
}
_FIELDS = [CommunicationEvent._meta.get_field(name) for name in EVENT_COLUMNS]


def _params(communication: Communication, entry: CommunicationHistory, connection) -> list:
    values = (
        uuid7(),
        TYPES[entry.action],
        communication.uuid,
        communication.dealer_uuid,
        communication.date_updated,
        dumps(event_data(communication, entry)).decode(),
    )
    params = [field.get_db_prep_save(value, connection) for field, value in zip(_FIELDS, values, strict=True)]
    if connection.vendor == "postgresql":
        params.insert(0, communication.uuid)
    return params


def record(communication: Communication, entry: CommunicationHistory) -> None:
    """The event of one history entry; inside the write's transaction, after the row is saved."""
    connection = connections[router.db_for_write(CommunicationEvent)]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT[connection.vendor], _params(communication, entry, connection))


def record_many(changes: Iterable[tuple[Communication, CommunicationHistory]]) -> None:
    """`record()` for a batch of writes (the importer's updates): one pipelined statement per event."""
    connection = connections[router.db_for_write(CommunicationEvent)]
    rows = [_params(communication, entry, connection) for communication, entry in changes]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_INSERT[connection.vendor], rows)


def imported(uuid: str, content: dict[str, Any], *, oracle_id: int, now: dt.datetime) -> tuple:
    """The event of an imported communication's creation, as EVENT_COLUMNS values, without `txid`
    (the column's default: a new communication has no previous event). Built from the checked row,
    as GET will show it; `changes` is empty, as in its history entry."""
    zone = timezone.get_default_timezone()
    values = {
        **content,
        "uuid": uuid,
        "oracle_id": oracle_id,
        "date_updated": now,
        "version": 1,
        "is_cancelled": content["status"] == Status.CANCELLED,
        "is_failed": content["status"] == Status.FAILED,
        "created_by": None,
        "updated_by": None,
        # An imported communication has not been tried through this service yet.
        "attempts_count": 0,
        "last_attempt_at": None,
        "last_attempt_outcome": "",
    }
    data = {
        "communication": {
            name: value.astimezone(zone) if isinstance(value, dt.datetime) else value
            for name, value in zip(_VIEW_NAMES, map(values.__getitem__, _IMPORTED_KEYS), strict=True)
        },
        "version": 1,
        "changes": {},
        "transition": None,
        "source": Source.IMPORT.value,
        "actor": None,
    }
    # uuid_utils' own UUID: its str() is native, the compat one's goes through uuid.UUID (per row)
    return (str(uuid_utils.uuid7()), EventType.CREATED.value, uuid, content["dealer_uuid"], now, dumps(data).decode())


# Reading


@dataclass(frozen=True)
class Event:
    position: Position
    event_id: uuid_lib.UUID
    type: str
    subject: uuid_lib.UUID
    time: dt.datetime
    data: str

    def envelope(self) -> dict[str, Any]:
        """The CloudEvent, structured JSON (`data` goes out as stored)."""
        return {
            "specversion": "1.0",
            "id": str(self.event_id),
            "source": settings.EVENTS_SOURCE,
            "type": self.type,
            "subject": str(self.subject),
            "time": self.time.astimezone(dt.UTC),
            "datacontenttype": "application/json",
            "sequence": self.position.cursor,
            "data": orjson.Fragment(self.data),
        }

    def body(self) -> bytes:
        return dumps(self.envelope())


@dataclass(frozen=True)
class Page:
    events: list[Event]
    next: Position  # where to go on from: the last event's position, or `now` when none are left
    now: Position  # the feed's position now: start here to get only what happens from now on
    has_more: bool


def _rows_between(alias: str, after: Position, until: Position) -> Any:
    return CommunicationEvent.objects.using(alias).filter(
        RawSQL("(txid, id) > (%s, %s)", tuple(after), output_field=BooleanField()),
        RawSQL("(txid, id) <= (%s, %s)", tuple(until), output_field=BooleanField()),
    )


# pg_stat_activity and pg_prepared_xacts give 32-bit transaction IDs; made 64-bit (xid8) against the
# snapshot's xmax, which is at most 2^31 transactions ahead of any that is still running.
_XID8 = "(s.xmax - mod(mod(s.xmax - {}::text::bigint, 4294967296) + 4294967296, 4294967296))"
# The oldest transaction that may still write an event. On the primary: the oldest still running in
# this database (only those write to its tables), else the next to start; read after the snapshot,
# so a transaction is either seen running or ended before. On a hot standby, which cannot tell which
# database a transaction of the primary writes to: the snapshot's xmin, the oldest in the cluster.
_OLDEST_WRITER = f"""CASE WHEN pg_is_in_recovery() THEN s.xmin ELSE least(
    s.xmax,
    (SELECT min({_XID8.format("backend_xid")}) FROM pg_stat_activity
     WHERE datname = current_database() AND backend_xid IS NOT NULL),
    (SELECT min({_XID8.format("transaction")}) FROM pg_prepared_xacts WHERE database = current_database())
) END"""
_SNAPSHOT = (
    "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,"
    " pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) AS s"
)


def horizon(alias: str | None = None) -> tuple[Position, Position]:
    """(now, purged) on one database, in one query: the last position the feed may serve now, and
    the last one retention has deleted."""
    alias = alias or router.db_for_read(CommunicationEvent)
    connection = connections[alias]
    marks = EventMark._meta.db_table
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:  # pg_stat_activity is read once per transaction, then kept
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")
        now, source = f"{_OLDEST_WRITER} - 1, {MAX_ID}", _SNAPSHOT
    else:
        now, source = f"0, (SELECT coalesce(max(id), 0) FROM {CommunicationEvent._meta.db_table})", "(SELECT 1) AS s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {now}, mark.txid, mark.event FROM {source} LEFT JOIN {marks} AS mark ON mark.name = %s",
            [PURGED],
        )
        now_txid, now_id, purged_txid, purged_id = cursor.fetchone()
    purged = Position(purged_txid, purged_id) if purged_txid is not None else START
    return Position(now_txid, now_id), purged


def event_page(
    *,
    after: Position | None,
    limit: int,
    types: Sequence[str] = (),
    subjects: Sequence[uuid_lib.UUID] = (),
    alias: str | None = None,
) -> Page:
    """The events after `after` (None: the oldest kept), in feed order. Two queries, whatever the page."""
    alias = alias or router.db_for_read(CommunicationEvent)
    now, purged = horizon(alias)
    if after is None:
        after = purged
    elif after < purged:
        raise CursorExpired(extra={"now": now.cursor})
    rows = _rows_between(alias, after, now)
    if types:
        rows = rows.filter(type__in=types)
    if subjects:
        rows = rows.filter(subject__in=subjects)
    found = [
        Event(Position(txid, id_), event_id, type_, subject, time, data)
        for id_, txid, event_id, type_, subject, time, data in rows.order_by("txid", "id").values_list(
            "id", "txid", "event_id", "type", "subject", "time", "data"
        )[: limit + 1]
    ]
    has_more = len(found) > limit
    events = found[:limit]
    return Page(
        events=events,
        next=events[-1].position if has_more else max(after, now),
        now=now,
        has_more=has_more,
    )


def pending(after: Position, *, cap: int, alias: str | None = None) -> tuple[int, dt.datetime | None]:
    """How many events the feed holds after `after` (counted up to `cap`), and the oldest one's time."""
    alias = alias or router.db_for_read(CommunicationEvent)
    rows = CommunicationEvent.objects.using(alias).filter(
        RawSQL("(txid, id) > (%s, %s)", tuple(after), output_field=BooleanField())
    )
    count = rows.order_by()[:cap].count()
    oldest = rows.order_by("txid", "id").values_list("time", flat=True).first() if count else None
    return count, oldest


# Retention


def events_purge(*, before: dt.datetime, batch_size: int, keep_after: Position | None = None) -> int:
    """Delete the feed's oldest events, older than `before`, in short transactions of `batch_size`.

    What goes is always a prefix of the feed, up to the first event that is recent enough, not yet
    served (past `now`), or after `keep_after` (what a relay has not published yet). The `purged`
    mark moves with each batch, so a cursor before it answers 410 instead of skipping silently.
    """
    table = CommunicationEvent._meta.db_table
    deleted = 0
    while True:
        with transaction.atomic():
            now, purged = horizon(router.db_for_write(CommunicationEvent))
            limit = min(now, keep_after) if keep_after is not None else now
            head = list(
                _rows_between(router.db_for_write(CommunicationEvent), purged, limit)
                .order_by("txid", "id")
                .values_list("txid", "id", "time")[:batch_size]
            )
            prefix = list(_takewhile_older(head, before))
            if not prefix:
                return deleted
            last = Position(*prefix[-1][:2])
            with connections[router.db_for_write(CommunicationEvent)].cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE (txid, id) <= (%s, %s)", list(last))
            EventMark.objects.update_or_create(
                name=PURGED, defaults={"txid": last.txid, "event": last.id, "date_updated": timezone.now()}
            )
        deleted += len(prefix)
        if len(prefix) < batch_size:
            return deleted


def _takewhile_older(rows: Iterable[tuple[int, int, dt.datetime]], before: dt.datetime):
    for row in rows:
        if row[2] >= before:
            return
        yield row
