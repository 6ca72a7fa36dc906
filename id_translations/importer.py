"""Bulk import of ID translations from CSV (`flora_uuid,oracle_id` with a header).

Per batch: parse and check the lines in Python, COPY the good ones into a temporary staging table
(PostgreSQL; plain inserts elsewhere), then let two set-based statements find the conflicts with
stored pairs and insert the rest. Each batch is one transaction. Memory holds one batch, whatever
the file's size.
"""

import csv
import re
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import psycopg
from django.db import IntegrityError, connection, transaction

from .models import ORACLE_ID_MAX, IdTranslation

COLUMNS = ("flora_uuid", "oracle_id")
CHUNK = 2_000  # rows per write to COPY
Row = tuple[int, str, int]  # line, canonical UUID text, Oracle ID
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
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


def _parse(row: list[str], match=UUID_RE.match) -> tuple[str, int]:
    """(canonical lower-case UUID text, Oracle ID). Text, not uuid.UUID: this is the hot loop."""
    if len(row) != 2:
        raise ValueError(f"expected 2 columns, found {len(row)}")
    flora_uuid = row[0].strip().lower()
    if match(flora_uuid) is None:
        raise ValueError("flora_uuid is not a UUID (8-4-4-4-12 hex digits)")
    text = row[1].strip()
    oracle_id = int(text) if text.isdigit() else 0
    if not 1 <= oracle_id <= ORACLE_ID_MAX:
        raise ValueError(f"oracle_id is not a whole number from 1 to {ORACLE_ID_MAX}")
    return flora_uuid, oracle_id


class _Staging:
    """The temporary table one import run works through."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.table = IdTranslation._meta.db_table

    def create(self, cursor) -> None:
        if self.postgres:
            types = "bigint, flora_uuid uuid, oracle_id bigint"
        else:
            types = "integer, flora_uuid char(32), oracle_id integer"
        cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (line {types})")

    def copy_into_table(self, cursor, chunks: Iterator[list[Row]]) -> bool:
        """Fast path for a batch of new pairs: COPY straight into the table.

        Any pair already stored (or stored meanwhile by another writer) makes COPY fail; the
        savepoint then undoes it and the caller takes the staging path. PostgreSQL only.
        """
        if not self.postgres:
            return False
        try:
            with transaction.atomic():
                with cursor.copy(f"COPY {self.table} (flora_uuid, oracle_id) FROM STDIN") as copy:
                    for chunk in chunks:
                        copy.write("".join(f"{flora_uuid}\t{oracle_id}\n" for _, flora_uuid, oracle_id in chunk))
        except (IntegrityError, psycopg.errors.IntegrityError):  # COPY bypasses Django's wrapping
            return False
        return True

    def load(self, cursor, rows: list[Row]) -> None:
        cursor.execute(f"DELETE FROM {STAGING}")
        if self.postgres:
            # The staging table is small and the translations mostly cached: probing their unique
            # indexes beats scanning them, which the default cost model would choose per batch.
            cursor.execute("SET LOCAL random_page_cost = 1.1")
            with cursor.copy(f"COPY {STAGING} (line, flora_uuid, oracle_id) FROM STDIN") as copy:
                # Every value is validated digits or hex, so the text format needs no escaping.
                copy.write("".join(f"{line}\t{flora_uuid}\t{oracle_id}\n" for line, flora_uuid, oracle_id in rows))
            # Without statistics the planner takes the staging table for empty or huge and may
            # scan the whole translations table per batch instead of probing its unique indexes.
            cursor.execute(f"ANALYZE {STAGING}")
        else:
            cursor.executemany(
                f"INSERT INTO {STAGING} (line, flora_uuid, oracle_id) VALUES (%s, %s, %s)",
                [(line, uuid_lib.UUID(flora_uuid).hex, oracle_id) for line, flora_uuid, oracle_id in rows],
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

    def insert_new(self, cursor) -> int:
        """Insert every staged pair whose sides are both free; return how many were."""
        cursor.execute(
            f"INSERT INTO {self.table} (flora_uuid, oracle_id) "
            f"SELECT s.flora_uuid, s.oracle_id FROM {STAGING} s ON CONFLICT DO NOTHING"
        )
        return cursor.rowcount


def _clean(
    batch: list[tuple[int, list[str] | None, str]], report: ErrorReport, stats: ImportStats
) -> Iterator[list[Row]]:
    """The batch's well-formed pairs, each once, in chunks; malformed lines and clashes between
    lines of the batch go to the report."""
    # Earlier lines of this batch, by each side: the value -> its row.
    by_uuid: dict[str, Row] = {}
    by_id: dict[int, Row] = {}
    chunk: list[Row] = []
    for line, row, error in batch:
        try:
            if row is None:
                raise ValueError(error)
            flora_uuid, oracle_id = _parse(row)
        except ValueError as reason:
            stats.malformed += 1
            report.reject(line, str(reason), row or [])
            continue
        earlier = by_uuid.get(flora_uuid) or by_id.get(oracle_id)
        if earlier is None:
            by_uuid[flora_uuid] = by_id[oracle_id] = parsed = (line, flora_uuid, oracle_id)
            chunk.append(parsed)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        elif earlier[1:] == (flora_uuid, oracle_id):
            stats.present += 1  # the same pair again
        else:
            stats.conflicting += 1
            report.reject(line, f"conflicts with line {earlier[0]} of this file", row)
    if chunk:
        yield chunk


def _import_batch(
    staging: _Staging, batch: list[tuple[int, list[str] | None, str]], report: ErrorReport
) -> ImportStats:
    stats = ImportStats(lines=len(batch))
    good: list[Row] = []

    def collected() -> Iterator[list[Row]]:
        for chunk in _clean(batch, report, stats):
            good.extend(chunk)
            yield chunk

    chunks = collected()
    with transaction.atomic(), connection.cursor() as cursor:
        # COPY consumes the chunks as they are parsed: PostgreSQL stores one while Python
        # parses the next.
        if staging.copy_into_table(cursor, chunks):
            stats.created = len(good)
            return stats
        for _ in chunks:  # the fast path stopped early: parse the rest of the batch
            pass
        if not good:
            return stats
        staging.load(cursor, good)
        stats.created = staging.insert_new(cursor)
        if stats.created < len(good):
            # Each pair not inserted is stored already, or one of its sides is taken.
            conflicts = staging.conflicts(cursor)
            lines = {line: row for line, row, _error in batch}
            for line, reason in conflicts:
                report.reject(line, reason, lines[line] or [])
            stats.conflicting += len(conflicts)
            stats.present += len(good) - stats.created - len(conflicts)
    return stats


def import_file(
    path: Path,
    *,
    report: ErrorReport,
    batch_size: int = 50_000,
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
