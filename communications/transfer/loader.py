"""Loading checked rows: the COPY batches on the shared loader (`communications_project.bulkload`),
each batch one transaction holding the communications, their ID translations, one `import`
history row each and, unless `events=False` (`--no-events`), the change-feed event of each.

A batch is first COPYed straight into the tables while it is parsed (a fresh migration: every row
new). If a row's `oracle_id` is stored already, the savepoint undoes that and the batch is sorted
out against what is stored: new, unchanged, changed (rewritten with `--update-existing`), or
translated earlier without its communication (created under the UUID the translation names).
"""

import datetime as dt
import itertools
import json
import logging
import uuid as uuid_lib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import F
from django.utils import timezone
from uuid_utils import uuid7

from communications_project import bulkload
from communications_project.bulkload import ImportFileError
from id_translations.models import IdTranslation

from .. import events as feed
from .. import selectors
from ..models import Communication, CommunicationEvent, CommunicationHistory, HistoryAction, Source
from .formats import ErrorReport, Raw, guess_format, read_file
from .rules import CONTENT, Rules

logger = logging.getLogger("communications.import")

COMMUNICATION_COLUMNS = ("uuid", *CONTENT, "date_updated", "version")
HISTORY_COLUMNS = ("communication_id", "date", "source", "action", "status_from", "status_to", "transition", "changes")
TABLES = (
    Communication._meta.db_table,
    IdTranslation._meta.db_table,
    CommunicationHistory._meta.db_table,
    CommunicationEvent._meta.db_table,
)
STAGING = "comm_import_staging"
CHUNK = 1_000  # rows per write to COPY
DEFAULT_BATCH_SIZE = 10_000
IMPORT = Source.IMPORT.value


@dataclass(slots=True)
class Row:
    """A row that passed every rule: its key, its content (CONTENT order), the UUID it gets."""

    line: int
    oracle_id: int
    content: tuple
    text: str
    uuid: str = ""


@dataclass
class ImportCounts(bulkload.Counts):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def _copy_line(uuid: str, content: tuple, now: str, text=bulkload.copy_text, null=bulkload.NULL) -> str:
    """The communication's line for COPY (COMMUNICATION_COLUMNS), from a validated row's content."""
    (method, kind, direction, status, client, employee, dealer, subject, comment, result, details,
     planned_start, planned_finish, start, finish, cancel_reason, fail_reason, created, deleted) = content  # fmt: skip
    return (
        "\t".join(
            (
                uuid,
                method,
                kind,
                direction,
                status,
                client,
                employee or null,
                dealer or null,
                text(subject),
                text(comment),
                text(result),
                text(json.dumps(details, ensure_ascii=False)) if details else "{}",
                planned_start.isoformat() if planned_start else null,
                planned_finish.isoformat() if planned_finish else null,
                start.isoformat() if start else null,
                finish.isoformat() if finish else null,
                text(cancel_reason),
                fail_reason,
                created.isoformat(),
                deleted.isoformat() if deleted else null,
                now,
                "1",
            )
        )
        + "\n"
    )


def _history_line(uuid: str, now: str, action: str, status: str, changes: str = "{}") -> str:
    return f"{uuid}\t{now}\t{IMPORT}\t{action}\t\t{status}\t\t{bulkload.copy_text(changes)}\n"


def _event_lines(rows: list[Row], now: dt.datetime, text=bulkload.copy_text, null=bulkload.NULL) -> str:
    """COPY lines (feed.EVENT_COLUMNS) of the rows' `communication.created` events."""
    lines = []
    for row in rows:
        event_id, type_, subject, dealer, _time, data = feed.imported(
            row.uuid, dict(zip(CONTENT, row.content, strict=True)), oracle_id=row.oracle_id, now=now
        )
        lines.append(f"{event_id}\t{type_}\t{subject}\t{dealer or null}\t{now.isoformat()}\t{text(data)}\n")
    return "".join(lines)


def _stored_content(values: tuple) -> tuple:
    return tuple(str(value) if isinstance(value, uuid_lib.UUID) else value for value in values)


def _changes(before: tuple, after: tuple) -> dict[str, list[Any]]:
    """What a row would change. A row without `date_deleted` leaves the stored one alone: an import
    deletes but never restores (restoring is the operators' call)."""
    return {
        name: [old, new]
        for name, old, new in zip(CONTENT, before, after, strict=True)
        if old != new and not (name == "date_deleted" and new is None)
    }


@dataclass(slots=True)
class Parsed:
    """A checked batch, ready to store: its counts so far, its good rows and their COPY text."""

    counts: ImportCounts
    now: dt.datetime
    rows: list[Row]
    communications: list[str]
    translations: str
    history: str
    events: str


class Loader:
    """Loads one batch after another; holds what a run keeps between batches (a few flags)."""

    def __init__(self, report: ErrorReport, *, update_existing: bool = False, events: bool = True) -> None:
        self.report = report
        self.update_existing = update_existing
        self.events = events
        self.rules = Rules()
        self.postgres = bulkload.is_postgresql()
        # Translations stored from this moment on were made by this run: a later row with the same
        # oracle_id is a duplicate inside the file (found without holding every ID in memory).
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT statement_timestamp()")
                self.started = cursor.fetchone()[0]
        else:
            now = timezone.now()  # SQLite stores milliseconds
            self.started = now.replace(microsecond=now.microsecond // 1000 * 1000)
        # The fast path is tried while batches turn out all new; after one that was not, the next
        # is looked up first (a re-delivered file does not COPY each batch in vain).
        self.expect_new = True
        self.staging = bulkload.Staging(STAGING, "line bigint", like=Communication._meta.db_table)
        self.staging_ready = False

    def parse(self, batch: list[Raw]) -> "Parsed":
        """Check a batch and write its COPY text. No database: this runs in the parsing thread while
        the previous batch is being stored."""
        counts = ImportCounts(rows=len(batch))
        now = timezone.now()
        stamp = now.isoformat()
        rows: list[Row] = []
        first_line: dict[int, int] = {}
        lines: list[str] = []
        for raw in batch:
            row = self._row(raw, counts, first_line)
            if row is not None:
                row.uuid = str(uuid7())  # uuid_utils' own, as the model's default but without uuid.UUID
                rows.append(row)
                lines.append(_copy_line(row.uuid, row.content, stamp))
        create = HistoryAction.CREATE.value
        return Parsed(
            counts=counts,
            now=now,
            rows=rows,
            communications=["".join(lines[start : start + CHUNK]) for start in range(0, len(lines), CHUNK)],
            translations="".join(f"{row.uuid}\t{row.oracle_id}\n" for row in rows),
            history="".join(_history_line(row.uuid, stamp, create, row.content[3]) for row in rows),
            events=_event_lines(rows, now) if self.events else "",
        )

    def load(self, parsed: "Parsed") -> ImportCounts:
        """Store a parsed batch (inside the batch's transaction)."""
        counts, rows = parsed.counts, parsed.rows
        if self.postgres and self.expect_new:
            with connection.cursor() as cursor:

                def steps() -> None:
                    bulkload.copy(cursor, TABLES[0], COMMUNICATION_COLUMNS, parsed.communications)
                    bulkload.copy(cursor, TABLES[1], ("flora_uuid", "oracle_id"), [parsed.translations])
                    bulkload.copy(cursor, TABLES[2], HISTORY_COLUMNS, [parsed.history])
                    bulkload.copy(cursor, TABLES[3], feed.EVENT_COLUMNS, [parsed.events])

                if bulkload.copy_new(steps):
                    counts.created += len(rows)
                    return counts
        self._sort_out(rows, counts, parsed.now)
        return counts

    def _row(self, raw: Raw, counts: ImportCounts, first_line: dict[int, int]) -> Row | None:
        if raw.values is None:
            counts.rejected += 1
            self.report.row(raw, None, *raw.problem)
            return None
        oracle_id, content, problems = self.rules.clean(raw.values)
        if problems:
            counts.rejected += 1
            for problem in problems:
                self.report.row(raw, oracle_id, *problem)
            return None
        earlier = first_line.setdefault(oracle_id, raw.line)
        if earlier != raw.line:
            counts.rejected += 1
            self.report.row(
                raw, oracle_id, "oracle_id", "duplicate", f"The same oracle_id is on line {earlier}; the first wins."
            )
            return None
        return Row(raw.line, oracle_id, content, raw.text)

    @staticmethod
    def _copy_history(cursor, rows: list[Row], stamp: str) -> None:
        create = HistoryAction.CREATE.value
        lines = "".join(_history_line(row.uuid, stamp, create, row.content[3]) for row in rows)
        bulkload.copy(cursor, TABLES[2], HISTORY_COLUMNS, [lines])

    def _stored(self, oracle_ids: list[int]) -> dict[int, tuple[str, bool, tuple | None]]:
        """oracle_id -> (its UUID, translated by this run, the stored content or None)."""
        pairs: list[tuple[int, uuid_lib.UUID, dt.datetime]] = []
        step = 5_000 if self.postgres else 900  # SQLite's limit of query parameters
        for start in range(0, len(oracle_ids), step):
            pairs += IdTranslation.objects.filter(oracle_id__in=oracle_ids[start : start + step]).values_list(
                "oracle_id", "flora_uuid", "date_created"
            )
        uuids = [pair[1] for pair in pairs]
        contents: dict[uuid_lib.UUID, tuple] = {}
        for start in range(0, len(uuids), step):
            for uuid, *content in Communication.objects.filter(uuid__in=uuids[start : start + step]).values_list(
                "uuid", *CONTENT
            ):
                contents[uuid] = _stored_content(content)
        return {
            oracle_id: (str(uuid), created >= self.started, contents.get(uuid)) for oracle_id, uuid, created in pairs
        }

    def _sort_out(self, rows: list[Row], counts: ImportCounts, now: dt.datetime) -> None:
        """The set-based path: each row against what is stored."""
        if not rows:
            return
        stored = self._stored([row.oracle_id for row in rows])
        self.expect_new = not stored
        new: list[Row] = []  # need a translation too
        creates: list[Row] = []
        updates: list[tuple[Row, dict]] = []
        for row in rows:
            found = stored.get(row.oracle_id)
            if found is None:
                new.append(row)
                continue
            uuid, this_run, content = found
            if this_run:
                counts.rejected += 1
                self.report.row(
                    row,
                    row.oracle_id,
                    "oracle_id",
                    "duplicate",
                    "The same oracle_id is earlier in this file; the first wins.",
                )
            elif content is None:  # translated before its communication arrived: keep that UUID
                row.uuid = uuid
                creates.append(row)
            else:
                row.uuid = uuid
                changes = _changes(content, row.content)
                if not changes:
                    counts.unchanged += 1
                elif self.update_existing:
                    updates.append((row, changes))
                else:
                    counts.rejected += 1
                    self.report.row(
                        row,
                        row.oracle_id,
                        ",".join(changes),
                        "changed",
                        f"Differs from the stored communication {uuid}; --update-existing rewrites it.",
                    )
        updates = self._untouched(updates, counts)
        creates += self._translate(new, counts)
        self._create(creates, now)
        counts.created += len(creates)
        self._update(updates, now)
        counts.updated += len(updates)

    def _untouched(self, updates: list[tuple[Row, dict]], counts: ImportCounts) -> list[tuple[Row, dict]]:
        """The updates whose communication nobody changed in this service since it was imported: a
        re-delivered file must not overwrite an operator's or the API's work."""
        if not updates:
            return []
        uuids = [row.uuid for row, _ in updates]
        # Locked first, in a stable order: a PATCH or transition that commits meanwhile is then in
        # the history read below, and none can slip in between this check and the UPDATE.
        list(Communication.objects.select_for_update().filter(uuid__in=uuids).order_by("uuid").values_list("pk"))
        edited = set(
            CommunicationHistory.objects.filter(communication_id__in=uuids)
            .exclude(source=Source.IMPORT)
            .values_list("communication_id", flat=True)
        )
        kept = []
        for row, changes in updates:
            if uuid_lib.UUID(row.uuid) in edited:
                counts.rejected += 1
                self.report.row(
                    row,
                    row.oracle_id,
                    ",".join(changes),
                    "edited_in_service",
                    f"The communication {row.uuid} was changed in this service since its import; not overwritten.",
                )
            else:
                kept.append((row, changes))
        return kept

    def _translate(self, rows: list[Row], counts: ImportCounts) -> list[Row]:
        """Store the rows' new translations; answer the rows whose translation was stored (another
        writer may have taken an oracle_id since the look-up)."""
        if not rows:
            return []
        if not self.postgres:
            IdTranslation.objects.bulk_create(
                IdTranslation(flora_uuid=row.uuid, oracle_id=row.oracle_id) for row in rows
            )
            return rows
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLES[1]} (flora_uuid, oracle_id) SELECT * FROM unnest(%s::uuid[], %s::bigint[]) "
                "ON CONFLICT DO NOTHING RETURNING oracle_id",
                [[row.uuid for row in rows], [row.oracle_id for row in rows]],
            )
            stored = {oracle_id for (oracle_id,) in cursor.fetchall()}
        taken = [row for row in rows if row.oracle_id not in stored]
        for row in taken:
            counts.rejected += 1
            self.report.row(
                row,
                row.oracle_id,
                "oracle_id",
                "concurrent",
                "Another writer stored this oracle_id meanwhile; run the file again.",
            )
        return [row for row in rows if row.oracle_id in stored]

    def _create(self, rows: list[Row], now: dt.datetime) -> None:
        if not rows:
            return
        if self.postgres:
            stamp = now.isoformat()
            with connection.cursor() as cursor:
                lines = "".join(_copy_line(row.uuid, row.content, stamp) for row in rows)
                bulkload.copy(cursor, TABLES[0], COMMUNICATION_COLUMNS, [lines])
                self._copy_history(cursor, rows, stamp)
                if self.events:
                    bulkload.copy(cursor, TABLES[3], feed.EVENT_COLUMNS, [_event_lines(rows, now)])
            return
        Communication.objects.bulk_create(
            Communication(uuid=row.uuid, date_updated=now, version=1, **dict(zip(CONTENT, row.content, strict=True)))
            for row in rows
        )
        CommunicationHistory.objects.bulk_create(
            CommunicationHistory(
                communication_id=row.uuid,
                date=now,
                source=Source.IMPORT,
                action=HistoryAction.CREATE,
                status_to=row.content[3],
            )
            for row in rows
        )
        if self.events:  # txid: the column's default (0 on SQLite)
            CommunicationEvent.objects.bulk_create(
                CommunicationEvent(**dict(zip(feed.EVENT_COLUMNS, event, strict=True)))
                for event in (
                    feed.imported(
                        row.uuid, dict(zip(CONTENT, row.content, strict=True)), oracle_id=row.oracle_id, now=now
                    )
                    for row in rows
                )
            )

    def _update(self, updates: list[tuple[Row, dict]], now: dt.datetime) -> None:
        """Rewrite changed communications (same UUID, next version) with an `update` history row."""
        if not updates:
            return
        history = [
            CommunicationHistory(
                communication_id=row.uuid,
                date=now,
                source=Source.IMPORT,
                action=HistoryAction.UPDATE,
                status_from=changes["status"][0] if "status" in changes else "",
                status_to=changes["status"][1] if "status" in changes else "",
                changes=json.loads(json.dumps(changes, cls=DjangoJSONEncoder)),
            )
            for row, changes in updates
        ]
        if self.postgres:
            stamp = now.isoformat()
            assignments = ", ".join(
                f"{name} = COALESCE(s.{name}, c.{name})" if name == "date_deleted" else f"{name} = s.{name}"
                for name in CONTENT
            )
            with connection.cursor() as cursor:
                if not self.staging_ready:
                    self.staging.create(cursor)
                    self.staging_ready = True
                lines = "".join(_copy_line(row.uuid, row.content, stamp) for row, _ in updates)
                self.staging.load(cursor, COMMUNICATION_COLUMNS, [lines])
                cursor.execute(
                    f"UPDATE {TABLES[0]} c SET {assignments}, date_updated = s.date_updated, version = c.version + 1 "
                    f"FROM {STAGING} s WHERE c.uuid = s.uuid"
                )
        else:
            for row, _ in updates:
                fields = dict(zip(CONTENT, row.content, strict=True))
                if fields["date_deleted"] is None:
                    del fields["date_deleted"]
                Communication.objects.filter(uuid=row.uuid).update(**fields, date_updated=now, version=F("version") + 1)
        CommunicationHistory.objects.bulk_create(history)
        if self.events:
            # The rows as they are now (the version the UPDATE gave), with what their view shows.
            updated = (
                Communication.objects.filter(uuid__in=[row.uuid for row, _ in updates])
                .select_related("created_by", "updated_by")
                .annotate(oracle_id=selectors.oracle_id())
                .in_bulk()
            )
            feed.record_many((updated[uuid_lib.UUID(entry.communication_id)], entry) for entry in history)


def import_rows(
    items: Iterable[Raw],
    *,
    report: ErrorReport,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    update_existing: bool = False,
    events: bool = True,
    progress: Callable[[int], None] = lambda rows: None,
) -> ImportCounts:
    loader = Loader(report, update_existing=update_existing, events=events)
    # Python checks batch N+1 in a thread while PostgreSQL stores batch N (the main thread waits
    # on the socket then, without the GIL).
    parsed = bulkload.in_background(loader.parse(batch) for batch in bulkload.batches(items, batch_size))
    return bulkload.run_batches(
        parsed,
        load=loader.load,
        total=ImportCounts(),
        batch_size=None,
        tables=TABLES,
        logger=logger,
        dry_run=dry_run,
        progress=progress,
    )


def import_file(path: Path, *, file_format: str | None = None, **options: Any) -> ImportCounts:
    """Import `path` (CSV or JSONL, by extension unless `file_format` says). ImportFileError when the
    file is unusable; nothing is written then."""
    file_format = file_format or guess_format(path)
    if not path.is_file():
        raise ImportFileError(f"No such file: {path}")
    with path.open(encoding="utf-8-sig", newline="" if file_format == "csv" else None) as handle:
        records = read_file(handle, file_format)
        first = next(records, None)  # the header (CSV) or the first line (JSONL) is checked now
        items = [] if first is None else itertools.chain([first], records)
        return import_rows(items, **options)
