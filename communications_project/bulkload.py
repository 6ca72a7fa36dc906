"""The bulk loader both importers share (ID translations, communications): how a batch is COPYed.

An importer parses and validates its file in Python and hands this module batches:

- `run_batches` drives the file: one transaction per batch (so an interrupted run leaves whole
  batches), a dry run in one transaction rolled back, a log line per batch, progress, and
  `ANALYZE` of the filled tables at the end (the planner must not take them for empty).
- `copy_new` is the fast path: COPY straight into the tables inside a savepoint; a unique
  violation (a row already stored) undoes it and the importer takes its set-based path.
- `copy` streams text chunks as they are produced, so PostgreSQL stores one chunk while Python
  parses the next.
- `Staging` is a temporary table a batch is COPYed into for set-based statements.
- `SecondaryIndexes`: for a large load into empty tables, the non-unique indexes are dropped
  before it and built after it (one sort per index instead of a B-tree insertion per row and
  index); an interrupted load leaves them missing, and the next load builds them at its end.

PostgreSQL only, except `run_batches`, `ErrorReport` and `count_lines`; on SQLite importers write
with the ORM.
"""

import csv
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO, TypeVar

import psycopg
from django.db import IntegrityError, connection, transaction
from tqdm import tqdm

T = TypeVar("T")
NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class ImportFileError(Exception):
    """The file as a whole cannot be used (missing, not UTF-8, no header, wrong columns)."""


def progress_bar(total: int, *, disable: bool) -> tqdm:
    """The import commands' bar on stderr: rows, rows/s and an ETA from the file's row count."""
    return tqdm(total=max(total, 0), unit=" rows", unit_scale=True, file=sys.stderr, disable=disable, mininterval=0.5)


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def copy_text(value: str) -> str:
    """A value for COPY's text format: backslash, tab, newline and carriage return escaped."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def count_lines(path: Path, *, check_utf8: bool = False) -> int:
    """Lines in the file, read in 1 MB pieces; with `check_utf8`, refuse a file that is not UTF-8
    before anything is written."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    offset = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            if check_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    line = lines - chunk.count(b"\n") + chunk[: error.start].count(b"\n") + 1
                    raise ImportFileError(f"The file is not UTF-8 (byte {offset + error.start}, line {line}).")
            offset += len(chunk)
        if check_utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ImportFileError("The file is not UTF-8 (it ends inside a character).")
    return lines


@dataclass
class ErrorReport:
    """Rejected rows as CSV with the given header, written as they are found (nothing held)."""

    out: TextIO
    header: list[str]
    count: int = 0
    _writer: Any = field(default=None, repr=False)

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reject(self, values: list[Any]) -> None:
        with self._lock:  # a loader may check rows in one thread and store them in another
            if self._writer is None:
                self._writer = csv.writer(self.out)
                self._writer.writerow(self.header)
            self.count += 1
            self._writer.writerow(values)


@dataclass
class Counts:
    """Per-batch and total counters; importers subclass it with their own fields (all ints)."""

    rows: int = 0

    def add(self, other: "Counts") -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def log_fields(self) -> dict[str, int]:
        """For a log record's `extra` (names such as `created` are the LogRecord's own)."""
        return {name if name == "rows" else f"rows_{name}": value for name, value in self.as_dict().items()}


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_background(items: Iterator[T], *, depth: int = 1) -> Iterator[T]:
    """Produce `items` in a thread, at most `depth` ahead of the one the consumer holds: memory
    holds depth + 1 items (with depth 1: the batch being stored and the one being checked). An
    exception in the thread is raised in the consumer."""
    done = object()
    results: queue.Queue = queue.Queue()
    slots = threading.Semaphore(depth + 1)  # one per item in hand, taken before it is made
    stop = threading.Event()

    def produce() -> None:
        try:
            iterator = iter(items)
            while True:
                while not slots.acquire(timeout=0.2):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(iterator, done)
                results.put((item, None))
                if item is done:
                    return
        except BaseException as error:  # handed to the consumer
            results.put((done, error))

    thread = threading.Thread(target=produce, name="bulkload-producer", daemon=True)
    thread.start()
    try:
        while True:
            item, error = results.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
            slots.release()  # the consumer is done with `item`
    finally:
        stop.set()


def run_batches(
    items: Iterable[T],
    *,
    load: Callable[[Any], Counts],
    total: Counts,
    batch_size: int | None,
    tables: Iterable[str],
    logger: logging.Logger,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda rows: None,
    finish: Callable[[], None] = lambda: None,
) -> Counts:
    """Load `items` in batches of `batch_size` (None: each item is a batch already), each in its own
    transaction (a dry run: all in one, rolled back), then `finish()` (not in a dry run) and ANALYZE
    `tables`. `load` gets one batch and answers its counts."""
    started = time.monotonic()
    with transaction.atomic() if dry_run else nullcontext():
        groups = items if batch_size is None else batches(items, batch_size)
        for number, batch in enumerate(groups, start=1):
            batch_started = time.monotonic()
            with transaction.atomic():
                counts = load(batch)
            total.add(counts)
            progress(counts.rows)
            logger.info(
                "batch %d: %s",
                number,
                ", ".join(f"{name} {value}" for name, value in counts.as_dict().items()),
                extra={
                    "batch": number,
                    **counts.log_fields(),
                    "elapsed_ms": round((time.monotonic() - batch_started) * 1000),
                    "total_rows": total.rows,
                    "dry_run": dry_run,
                },
            )
        if dry_run:
            transaction.set_rollback(True)
    if not dry_run:
        finish()
        analyze(tables)
    logger.info(
        "import finished: %s",
        ", ".join(f"{name} {value}" for name, value in total.as_dict().items()),
        extra={**total.log_fields(), "elapsed_ms": round((time.monotonic() - started) * 1000), "dry_run": dry_run},
    )
    return total


def analyze(tables: Iterable[str]) -> None:
    """Fresh statistics, so the API's first queries after a bulk load plan as in steady state."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def copy(cursor, table: str, columns: Iterable[str], chunks: Iterable[str | bytes]) -> None:
    """COPY text-format chunks (lines already escaped with `copy_text`; str, or bytes in UTF-8)
    into `table`."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as stream:
        for chunk in chunks:
            if chunk:
                stream.write(chunk)


def copy_new(steps: Callable[[], None]) -> bool:
    """Run COPY steps in a savepoint. An integrity error (typically a row stored already, or
    meanwhile by another writer) undoes all of them and answers False: the caller takes its
    set-based path, where any other error shows itself."""
    if not is_postgresql():
        return False
    try:
        with transaction.atomic():
            steps()
    except (IntegrityError, psycopg.errors.IntegrityError):  # COPY bypasses Django's wrapping
        return False
    return True


class Staging:
    """A temporary table a batch is loaded into, for set-based statements against the real ones."""

    def __init__(self, name: str, columns: str, *, like: str | None = None) -> None:
        self.name = name
        self.columns = columns  # "line bigint, flora_uuid uuid, ..." (the SQL column list)
        self.like = like

    def create(self, cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        body = f"LIKE {self.like} INCLUDING DEFAULTS, {self.columns}" if self.like else self.columns
        cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({body})")

    def load(self, cursor, columns: Iterable[str], chunks: Iterable[str]) -> None:
        """Replace the staged rows with `chunks` (COPY text) and give the planner their statistics.

        Without them the planner takes the staging table for empty or huge and may scan a whole
        real table per batch instead of probing its unique indexes.
        """
        cursor.execute(f"DELETE FROM {self.name}")
        copy(cursor, self.name, columns, chunks)
        cursor.execute(f"ANALYZE {self.name}")


class SecondaryIndexes:
    """The non-unique indexes Django's migrations gave `models` (their `Meta.indexes`, foreign keys
    and `db_index` fields; primary keys and unique constraints are not among them, so duplicates
    are still refused while they are away), as the schema editor writes them.

    A load into empty tables drops them first and builds them after it: PostgreSQL then sorts
    each index once instead of inserting every row into every B-tree, several times faster for a
    large load. The state is in the schema itself: an interrupted load leaves the indexes missing,
    and the next load (or `build`) creates what is missing.
    """

    MEMORY = "256MB"  # maintenance_work_mem of the session while it builds them

    def __init__(self, models: Iterable) -> None:
        editor = connection.schema_editor()  # only renders the statements; nothing runs here
        self.statements: dict[str, str] = {}
        self.tables: dict[str, str] = {}  # index name -> its table
        for model in models:
            for statement in editor._model_indexes_sql(model):
                sql = str(statement)
                name = re.match(r'CREATE INDEX "([^"]+)" ON ', sql)[1]
                self.statements[name] = sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
                self.tables[name] = model._meta.db_table

    def missing(self) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)",
                [list(self.statements)],
            )
            present = {name for (name,) in cursor.fetchall()}
        return [name for name in self.statements if name not in present]

    def drop(self, names: Iterable[str]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {', '.join(connection.ops.quote_name(n) for n in names)}")

    def build(self, names: Iterable[str]) -> None:
        """Create the indexes `names` (one statement each). Inside a transaction its pending deferred
        constraint checks run first: PostgreSQL refuses to index a table that has any."""
        if connection.in_atomic_block:
            connection.check_constraints()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('maintenance_work_mem')")
            (memory,) = cursor.fetchone()
            cursor.execute(f"SET maintenance_work_mem = '{self.MEMORY}'")
            try:
                for name in names:
                    cursor.execute(self.statements[name])
            finally:
                cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [memory])
