"""Bulk import of ID translations from CSV (`flora_uuid,oracle_id` with a header).

Per batch: parse and check the lines in Python while COPY stores them straight into the table
(PostgreSQL, when the batch is all new); otherwise load the good ones into a temporary staging
table and let two set-based statements find the conflicts with stored pairs and insert the rest.
The batching, the COPY and the staging table are the shared loader's
(`communications_project.bulkload`). Memory holds one batch, whatever the file's size.
"""

import csv
import itertools
import logging
import re
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from django.db import connection

from communications_project import bulkload
from communications_project.bulkload import ImportFileError, count_lines

from .models import ORACLE_ID_MAX, IdTranslation, parse_oracle_id

__all__ = ["ErrorReport", "ImportFileError", "ImportStats", "count_lines", "import_file"]

COLUMNS = ("flora_uuid", "oracle_id")
CHUNK = 2_000  # rows per write to COPY
Row = tuple[int, str, int]  # line, canonical UUID text, Oracle ID
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STAGING = "idt_import_staging"


logger = logging.getLogger("id_translations.import")


@dataclass
class ImportStats(bulkload.Counts):
    created: int = 0
    present: int = 0
    conflicting: int = 0
    malformed: int = 0

    @property
    def lines(self) -> int:
        return self.rows


class ErrorReport(bulkload.ErrorReport):
    """Rejected lines as CSV: line, reason, the raw values (cut to 200 characters)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out, ["line", "reason", "flora_uuid", "oracle_id"])

    def reject(self, line: int, reason: str, raw: list[str]) -> None:  # type: ignore[override]
        values = [value[:200] for value in raw[:2]] + [""] * (2 - len(raw[:2]))
        super().reject([line, reason, *values])


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
    oracle_id = parse_oracle_id(row[1])
    if oracle_id is None:
        raise ValueError(f"oracle_id is not a whole number from 1 to {ORACLE_ID_MAX}")
    return flora_uuid, oracle_id


class _Staging:
    """The temporary table one import run works through (the shared loader's on PostgreSQL)."""

    COLUMNS = ("line", "flora_uuid", "oracle_id")

    def __init__(self) -> None:
        self.postgres = bulkload.is_postgresql()
        self.table = IdTranslation._meta.db_table
        self.shared = bulkload.Staging(STAGING, "line bigint, flora_uuid uuid, oracle_id bigint")

    def create(self, cursor) -> None:
        if self.postgres:
            self.shared.create(cursor)
        else:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (line integer, flora_uuid char(32), oracle_id integer)")

    def copy_into_table(self, cursor, chunks: Iterator[list[Row]]) -> bool:
        """Fast path for a batch of new pairs: COPY straight into the table (see bulkload.copy_new)."""
        # Every value is validated digits or hex, so the text format needs no escaping.
        lines = ("".join(f"{flora_uuid}\t{oracle_id}\n" for _, flora_uuid, oracle_id in chunk) for chunk in chunks)
        return bulkload.copy_new(lambda: bulkload.copy(cursor, self.table, ("flora_uuid", "oracle_id"), lines))

    def load(self, cursor, rows: list[Row]) -> None:
        if self.postgres:
            # The staging table is small and the translations mostly cached: probing their unique
            # indexes beats scanning them, which the default cost model would choose per batch.
            cursor.execute("SET LOCAL random_page_cost = 1.1")
            text = "".join(f"{line}\t{flora_uuid}\t{oracle_id}\n" for line, flora_uuid, oracle_id in rows)
            self.shared.load(cursor, self.COLUMNS, [text])
        else:
            cursor.execute(f"DELETE FROM {STAGING}")
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
    stats = ImportStats(rows=len(batch))
    good: list[Row] = []

    def collected() -> Iterator[list[Row]]:
        for chunk in _clean(batch, report, stats):
            good.extend(chunk)
            yield chunk

    chunks = collected()
    with connection.cursor() as cursor:
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
    """Import `path`, one transaction per batch; a dry run does all the work and rolls it back."""
    staging = _Staging()
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        rows = _rows(handle)
        first = next(rows, None)  # reads and checks the header before anything is written
        with connection.cursor() as cursor:
            staging.create(cursor)
        return bulkload.run_batches(
            [] if first is None else itertools.chain([first], rows),
            load=lambda batch: _import_batch(staging, batch, report),
            total=ImportStats(),
            batch_size=batch_size,
            tables=[IdTranslation._meta.db_table],
            logger=logger,
            dry_run=dry_run,
            progress=progress,
        )
