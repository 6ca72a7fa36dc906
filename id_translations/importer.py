"""Bulk import of ID translations from CSV (`flora_uuid,oracle_id` with a header).

Per batch: parse and check the lines in Python, COPY the good ones into a temporary staging table
(PostgreSQL; plain inserts elsewhere), then let two set-based statements find the conflicts with
stored pairs and insert the rest. Each batch is one transaction. Memory holds one batch, whatever
the file's size.
"""

import csv
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from django.db import connection, transaction
from django.utils import timezone

from .models import ORACLE_ID_MAX, IdTranslation

COLUMNS = ("flora_uuid", "oracle_id")
STAGING = "idt_import_staging"


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, no header, wrong columns)."""


@dataclass
class ImportStats:
    lines: int = 0
    created: int = 0
    present: int = 0
    conflicting: int = 0
    malformed: int = 0

    def add(self, other: "ImportStats") -> None:
        for name in ("lines", "created", "present", "conflicting", "malformed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class ErrorReport:
    """Rejected lines as CSV: line, reason, the raw values (cut to 200 characters)."""

    out: TextIO
    count: int = 0

    def reject(self, line: int, reason: str, raw: list[str]) -> None:
        writer = csv.writer(self.out)
        if self.count == 0:
            writer.writerow(["line", "reason", "flora_uuid", "oracle_id"])
        self.count += 1
        values = [value[:200] for value in raw[:2]] + [""] * (2 - len(raw[:2]))
        writer.writerow([line, reason, *values])


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _rows(handle: TextIO) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, values or None, error) for each data line; the header is checked first."""
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("The file is empty; expected a header: flora_uuid,oracle_id.")
    if [name.strip() for name in header] != list(COLUMNS):
        raise ImportFileError(f"Expected the header flora_uuid,oracle_id; found {','.join(header)[:200]!r}.")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield reader.line_num, None, f"unreadable CSV: {error}"
            continue
        if row:  # blank lines are skipped
            yield reader.line_num, row, ""


def _parse(row: list[str]) -> tuple[uuid_lib.UUID, int]:
    if len(row) != 2:
        raise ValueError(f"expected 2 columns, found {len(row)}")
    try:
        flora_uuid = uuid_lib.UUID(row[0].strip())
    except ValueError:
        raise ValueError("flora_uuid is not a UUID")
    text = row[1].strip()
    if not text.isdigit() or not 1 <= int(text) <= ORACLE_ID_MAX:
        raise ValueError(f"oracle_id is not a whole number from 1 to {ORACLE_ID_MAX}")
    return flora_uuid, int(text)


class _Staging:
    """The temporary table one import run works through."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.table = IdTranslation._meta.db_table
        self.uuid_field = IdTranslation._meta.get_field("flora_uuid")

    def create(self, cursor) -> None:
        if self.postgres:
            types = "bigint, flora_uuid uuid, oracle_id bigint"
        else:
            types = "integer, flora_uuid char(32), oracle_id integer"
        cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (line {types})")

    def load(self, cursor, rows: list[tuple[int, uuid_lib.UUID, int]]) -> None:
        cursor.execute(f"DELETE FROM {STAGING}")
        if self.postgres:
            with cursor.copy(f"COPY {STAGING} (line, flora_uuid, oracle_id) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {STAGING} (line, flora_uuid, oracle_id) VALUES (%s, %s, %s)",
                [(line, self.uuid_field.get_db_prep_value(u, connection), i) for line, u, i in rows],
            )

    def conflicts(self, cursor) -> list[tuple[int, str]]:
        """(line, reason) for each staged pair one side of which is stored with another partner."""
        cursor.execute(
            f"SELECT s.line, t.flora_uuid, t.oracle_id FROM {STAGING} s "
            f"JOIN {self.table} t ON t.flora_uuid = s.flora_uuid AND t.oracle_id <> s.oracle_id "
            f"UNION ALL "
            f"SELECT s.line, t.flora_uuid, t.oracle_id FROM {STAGING} s "
            f"JOIN {self.table} t ON t.oracle_id = s.oracle_id AND t.flora_uuid <> s.flora_uuid"
        )
        found: dict[int, str] = {}
        for line, flora_uuid, oracle_id in cursor.fetchall():
            stored = uuid_lib.UUID(str(flora_uuid))  # SQLite answers hex text
            found.setdefault(line, f"conflicts with the stored pair {stored},{oracle_id}")
        return sorted(found.items())

    def insert_new(self, cursor, now) -> int:
        cursor.execute(
            f"INSERT INTO {self.table} (flora_uuid, oracle_id, date_created) "
            f"SELECT s.flora_uuid, s.oracle_id, %s FROM {STAGING} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.table} t WHERE t.flora_uuid = s.flora_uuid) "
            f"AND NOT EXISTS (SELECT 1 FROM {self.table} t WHERE t.oracle_id = s.oracle_id) "
            f"ON CONFLICT DO NOTHING",
            [now],
        )
        return cursor.rowcount


def _import_batch(
    staging: _Staging, batch: list[tuple[int, list[str] | None, str]], report: ErrorReport
) -> ImportStats:
    stats = ImportStats(lines=len(batch))
    # Earlier lines of this batch: uuid -> (oracle_id, line) and oracle_id -> (uuid, line).
    by_uuid: dict[uuid_lib.UUID, tuple[int, int]] = {}
    by_id: dict[int, tuple[uuid_lib.UUID, int]] = {}
    good: list[tuple[int, uuid_lib.UUID, int]] = []
    for line, row, error in batch:
        try:
            if row is None:
                raise ValueError(error)
            flora_uuid, oracle_id = _parse(row)
        except ValueError as reason:
            stats.malformed += 1
            report.reject(line, str(reason), row or [])
            continue
        earlier_id, earlier_uuid = by_uuid.get(flora_uuid), by_id.get(oracle_id)
        if earlier_id is None and earlier_uuid is None:
            by_uuid[flora_uuid] = (oracle_id, line)
            by_id[oracle_id] = (flora_uuid, line)
            good.append((line, flora_uuid, oracle_id))
        elif earlier_id and earlier_uuid and earlier_id[0] == oracle_id and earlier_uuid[0] == flora_uuid:
            stats.present += 1  # the same pair again
        else:
            stats.conflicting += 1
            report.reject(line, f"conflicts with line {(earlier_id or earlier_uuid)[1]} of this file", row)
    if not good:
        return stats
    with transaction.atomic(), connection.cursor() as cursor:
        staging.load(cursor, good)
        conflicts = staging.conflicts(cursor)
        lines = {line: row for line, row, _error in batch}
        for line, reason in conflicts:
            report.reject(line, reason, lines[line] or [])
        stats.conflicting += len(conflicts)
        if conflicts:
            placeholders = ", ".join(["%s"] * len(conflicts))
            cursor.execute(f"DELETE FROM {STAGING} WHERE line IN ({placeholders})", [line for line, _ in conflicts])
        stats.created += staging.insert_new(cursor, timezone.now())
        stats.present += len(good) - len(conflicts) - stats.created
    return stats


def import_file(
    path: Path,
    *,
    report: ErrorReport,
    batch_size: int = 10_000,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda lines: None,
) -> ImportStats:
    """Import `path`; a dry run does all the work in one transaction and rolls it back."""
    total = ImportStats()
    staging = _Staging()
    opened = path.open(encoding="utf-8-sig", errors="replace", newline="")
    with opened as handle, transaction.atomic() if dry_run else nullcontext():
        with connection.cursor() as cursor:
            staging.create(cursor)
        batch: list = []
        for item in _rows(handle):
            batch.append(item)
            if len(batch) >= batch_size:
                total.add(_import_batch(staging, batch, report))
                progress(len(batch))
                batch = []
        if batch:
            total.add(_import_batch(staging, batch, report))
            progress(len(batch))
        if dry_run:
            transaction.set_rollback(True)
    return total
