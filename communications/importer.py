"""Bulk import of communications from CSV or JSONL, keyed by the legacy `oracle_id` (SPEC §8).

Each row is checked by the rules of the API and the state machine, from the same code: the
per-method `details` validators, the methods dictionary (read once per run), the model's enums and
transition table, the services' date rules. A row the rules accept never reaches a database CHECK
constraint. Good rows are loaded in batches by the shared COPY loader
(`communications_project.bulkload`), each batch one transaction holding the communications, their
ID translations and one `import` history row each. Rejected rows go to the error report.

A batch is first COPYed straight into the tables while it is parsed (a fresh migration: every row
new). If a row's `oracle_id` is stored already, the savepoint undoes that and the batch is sorted
out against what is stored: new, unchanged, changed (rewritten with `--update-existing`), or
translated earlier without its communication (created under the UUID the translation names).
"""

import csv
import datetime as dt
import itertools
import json
import logging
import re
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import F
from django.utils import timezone
from uuid_utils import uuid7

from communications_project import bulkload
from communications_project.bulkload import ImportFileError
from communications_project.fields import to_utc
from dicts.models import CommunicationMethod
from id_translations.models import ORACLE_ID_MAX, IdTranslation, parse_oracle_id

from .api.serializers import TEXT_MAX
from .details import validate_details
from .models import (
    Communication,
    CommunicationHistory,
    Direction,
    HistoryAction,
    Kind,
    Source,
    Status,
)
from .services import (
    check_fail_reason,
    check_finish_after_start,
    check_method_active,
    check_not_in_future,
    check_planned_dates,
)

logger = logging.getLogger("communications.import")

# The file's columns (CSV header names = JSONL keys), in the order the export writes them.
COLUMNS = (
    "oracle_id",
    "method",
    "kind",
    "direction",
    "status",
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "comment",
    "result",
    "date_planned_start",
    "date_planned_finish",
    "date_start",
    "date_finish",
    "cancel_reason",
    "fail_reason",
    "details",
    "date_created",
    "date_deleted",
)
# Columns a CSV header must name: without them no row could be valid.
REQUIRED_COLUMNS = ("oracle_id", "method", "kind", "direction", "status", "client_uuid", "date_created")
# What a row sets on the communication (model attribute names); compared on a re-run.
CONTENT = (
    "method_id",
    "kind",
    "direction",
    "status",
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "comment",
    "result",
    "details",
    "date_planned_start",
    "date_planned_finish",
    "date_start",
    "date_finish",
    "cancel_reason",
    "fail_reason",
    "date_created",
    "date_deleted",
)
COMMUNICATION_COLUMNS = ("uuid", *CONTENT, "date_updated", "version")
HISTORY_COLUMNS = ("communication_id", "date", "source", "action", "status_from", "status_to", "transition", "changes")
REPORT_HEADER = ["line", "oracle_id", "column", "code", "message", "raw"]
TABLES = (
    Communication._meta.db_table,
    IdTranslation._meta.db_table,
    CommunicationHistory._meta.db_table,
)
STAGING = "comm_import_staging"
CHUNK = 1_000  # rows per write to COPY
DEFAULT_BATCH_SIZE = 10_000
TEXT_LIMITS = {
    "subject": Communication._meta.get_field("subject").max_length,
    "comment": TEXT_MAX,
    "result": TEXT_MAX,
    "cancel_reason": TEXT_MAX,
    # Checked against the choices when the row is failed, must be empty otherwise.
    "fail_reason": Communication._meta.get_field("fail_reason").max_length,
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
fromisoformat = dt.datetime.fromisoformat
DATE_MESSAGE = "Must be an ISO 8601 date-time with an offset, e.g. 2024-05-01T10:30:00+03:00."

Problem = tuple[str, str, str]  # column, code, message
# The enums' values as plain strings: `Kind.values` builds a list on each access (hot loop).
KINDS, DIRECTIONS, STATUSES = (tuple(enum.values) for enum in (Kind, Direction, Status))
IMPORT = Source.IMPORT.value
ACTUAL, PLANNED = Kind.ACTUAL.value, Kind.PLANNED.value
CREATED, IN_WORK, DONE, FAILED, CANCELLED = (
    status.value for status in (Status.CREATED, Status.IN_WORK, Status.DONE, Status.FAILED, Status.CANCELLED)
)


@dataclass(slots=True)
class Raw:
    """One record of the file: its first line, its values by column (None: unreadable), its text."""

    line: int
    values: dict[str, Any] | None
    text: str
    problem: Problem | None = None


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


class ErrorReport(bulkload.ErrorReport):
    """CSV: line, oracle_id, column, code, message, the raw line (cut to 2,000 characters)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out, REPORT_HEADER)

    def row(self, raw: Raw | Row, oracle_id: Any, column: str, code: str, message: str) -> None:
        self.reject(
            [raw.line, "" if oracle_id is None else oracle_id, column, code, message, raw.text.rstrip("\r\n")[:2000]]
        )


# Reading the file


def guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFileError(f"Cannot tell the format from {path.name!r}; pass --format csv or --format jsonl.")


def read_csv(handle: TextIO) -> Iterator[Raw]:
    """Records of a CSV file with a header; each with the exact text of its line(s)."""
    pending: list[str] = []

    def lines() -> Iterator[str]:
        for text in handle:
            pending.append(text)
            yield text

    reader = csv.reader(lines())
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ImportFileError("The file is empty; expected a CSV header naming the columns.")
    except csv.Error as error:
        raise ImportFileError(f"The header is not CSV: {error}.")
    _check_header(header)
    line = 1 + len(pending)
    pending.clear()
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Raw(line, None, "".join(pending), ("", "unreadable", f"Not readable as CSV: {error}."))
        else:
            if values:  # blank lines are skipped
                if len(values) == len(header):
                    yield Raw(line, dict(zip(header, values, strict=True)), "".join(pending))
                else:
                    message = f"Expected {len(header)} values as in the header, found {len(values)}."
                    yield Raw(line, None, "".join(pending), ("", "column_count", message))
        line += len(pending)
        pending.clear()


def _check_header(header: list[str]) -> None:
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s) {', '.join(map(repr, unknown))}; the columns are: {', '.join(COLUMNS)}."
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ImportFileError(f"Column(s) named twice: {', '.join(duplicated)}.")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(f"Missing column(s): {', '.join(missing)}.")


def read_jsonl(handle: TextIO) -> Iterator[Raw]:
    """One JSON object per line. A first line that is not one makes the whole file unusable."""
    first = True
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            values = json.loads(text)
        except ValueError as error:
            values, problem = None, ("", "invalid_json", f"Not a JSON object: {error}.")
        else:
            problem = None if isinstance(values, dict) else ("", "invalid_json", "Not a JSON object.")
        if problem and first:
            raise ImportFileError(f"Line {line} is not a JSON object; expected JSONL (one object per line).")
        first = False
        if problem is None:
            unknown = [key for key in values if key not in COLUMNS]
            if unknown:
                problem = (unknown[0], "unknown_field", f"Unknown field; the fields are: {', '.join(COLUMNS)}.")
        yield Raw(line, None if problem else values, text, problem)


def read_file(handle: TextIO, file_format: str) -> Iterator[Raw]:
    return read_csv(handle) if file_format == "csv" else read_jsonl(handle)


# The rules


def reachable_statuses(kind: str) -> list[str]:
    """Statuses a communication of `kind` can be in: the initial one and every transition's target
    reachable from it whose conditions hold for that kind (read from the model's state machine)."""
    probe = Communication(kind=kind)
    transitions = Communication._meta.get_field("status").get_all_transitions(Communication)
    seen = [Communication.initial_status(kind)]
    for status in seen:  # grows while iterating: a breadth-first walk
        for item in transitions:
            if item.source in (status, "*", "+") and all(condition(probe) for condition in item.conditions):
                if item.target not in seen:
                    seen.append(item.target)
    return [str(status) for status in seen]


def _problems(error: ValidationError, column: str) -> list[Problem]:
    if hasattr(error, "error_dict"):
        return [
            (key, item.code or "invalid", " ".join(item.messages))
            for key, items in error.error_dict.items()
            for item in items
        ]
    return [(column, item.code or "invalid", " ".join(item.messages)) for item in error.error_list]


class Rules:
    """Checks one row of the file; built once per run (the methods dictionary is read here)."""

    def __init__(self) -> None:
        self.methods = {method.code: method for method in CommunicationMethod.objects.all()}
        self.statuses = {kind: reachable_statuses(kind) for kind in Kind.values}
        self.now = timezone.now()  # "not in the future" is measured against the run's start

    def clean(self, values: dict[str, Any]) -> tuple[int | None, tuple | None, list[Problem]]:
        """(oracle_id, content, problems): content is None when there is any problem."""
        problems: list[Problem] = []
        get = values.get

        oracle_id = self._oracle_id(get("oracle_id"), problems)
        method = self._choice("method", get("method"), None, problems)
        if method is not None:
            try:
                check_method_active(method, self.methods.get(method))
            except ValidationError as error:
                problems.extend(_problems(error, "method"))
                method = None
        kind = self._choice("kind", get("kind"), KINDS, problems)
        direction = self._choice("direction", get("direction"), DIRECTIONS, problems)
        status = self._choice("status", get("status"), STATUSES, problems)
        client_uuid = self._uuid("client_uuid", get("client_uuid"), problems, required=True)
        employee_uuid = self._uuid("employee_uuid", get("employee_uuid"), problems)
        dealer_uuid = self._uuid("dealer_uuid", get("dealer_uuid"), problems)
        texts = {name: self._text(name, get(name), problems) for name in TEXT_LIMITS}
        fail_reason = texts["fail_reason"].strip()
        dates = {
            name: self._date(name, get(name), problems)
            for name in (
                "date_planned_start",
                "date_planned_finish",
                "date_start",
                "date_finish",
                "date_created",
                "date_deleted",
            )
        }
        details = self._details(method, get("details"), problems)

        if dates["date_created"] is None and not any(p[0] == "date_created" for p in problems):
            problems.append(("date_created", "required", "Required."))
        for name in ("date_start", "date_finish", "date_created", "date_deleted"):
            if dates[name] is not None:
                try:
                    check_not_in_future(dates[name], attr=name, now=self.now)
                except ValidationError as error:
                    problems.extend(_problems(error, name))
        if kind is not None:
            self._check(problems, check_planned_dates, kind, dates["date_planned_start"], dates["date_planned_finish"])
            if kind == ACTUAL and dates["date_start"] is None:
                # As the API does: an actual communication started when it was recorded.
                dates["date_start"] = dates["date_created"]
        if kind is not None and status is not None:
            self._check_status(kind, status, dates, fail_reason, texts["cancel_reason"], problems)

        if problems:
            return oracle_id, None, problems
        content = (
            method,
            kind,
            direction,
            status,
            client_uuid,
            employee_uuid,
            dealer_uuid,
            texts["subject"],
            texts["comment"],
            texts["result"],
            details,
            dates["date_planned_start"],
            dates["date_planned_finish"],
            dates["date_start"],
            dates["date_finish"],
            texts["cancel_reason"],
            fail_reason,
            dates["date_created"],
            dates["date_deleted"],
        )
        return oracle_id, content, problems

    def _check_status(
        self, kind: str, status: str, dates: dict, fail_reason: str, cancel_reason: str, problems
    ) -> None:
        """What the state machine implies for a row in `status`: how it got there and what that set."""
        if status not in self.statuses[kind]:
            possible = ", ".join(self.statuses[kind])
            problems.append(
                ("status", "status_not_reachable", f"A {kind} communication cannot be {status}; possible: {possible}.")
            )
            return
        if status == DONE:
            if dates["date_finish"] is None:
                problems.append(("date_finish", "required", "Required for a done communication (closing sets it)."))
            else:
                self._check(problems, check_finish_after_start, dates["date_start"], dates["date_finish"])
        elif dates["date_finish"] is not None:
            problems.append(("date_finish", "not_done", "Only a done communication has a finish date."))
        if kind == PLANNED and status == CREATED and dates["date_start"] is not None:
            problems.append(("date_start", "not_started", "A planned communication still created has not started."))
        if kind == PLANNED and status == IN_WORK and dates["date_start"] is None:
            problems.append(
                ("date_start", "required", "Required for a planned communication in work (starting sets it).")
            )
        if status == FAILED:
            self._check(problems, check_fail_reason, fail_reason)
        elif fail_reason:
            problems.append(("fail_reason", "not_failed", "Only a failed communication has a fail reason."))
        if cancel_reason and status != CANCELLED:
            problems.append(("cancel_reason", "not_cancelled", "Only a cancelled communication has a cancel reason."))

    @staticmethod
    def _check(problems: list[Problem], rule: Callable, *args, **kwargs) -> None:
        try:
            rule(*args, **kwargs)
        except ValidationError as error:
            problems.extend(_problems(error, kwargs.get("attr", "")))

    @staticmethod
    def _oracle_id(value: Any, problems: list[Problem]) -> int | None:
        if value is None or value == "":
            problems.append(("oracle_id", "required", "Required."))
            return None
        if isinstance(value, str):
            value = parse_oracle_id(value)
        if type(value) is not int or not 1 <= value <= ORACLE_ID_MAX:
            problems.append(("oracle_id", "invalid", f"Must be a whole number from 1 to {ORACLE_ID_MAX}."))
            return None
        return value

    @staticmethod
    def _choice(name: str, value: Any, choices: list[str] | None, problems: list[Problem]) -> str | None:
        if value is None or value == "":
            problems.append((name, "required", "Required."))
            return None
        if not isinstance(value, str):
            problems.append((name, "invalid", "Must be a string."))
            return None
        value = value.strip()
        if choices is not None and value not in choices:
            problems.append(
                (name, "invalid_choice", f"Unknown value '{value[:50]}'; expected one of: {', '.join(choices)}.")
            )
            return None
        return value

    @staticmethod
    def _uuid(name: str, value: Any, problems: list[Problem], *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                problems.append((name, "required", "Required."))
            return None
        if isinstance(value, str):
            text = value.strip().lower()
            if UUID_RE.match(text):
                return text
            try:  # other spellings uuid.UUID takes: 32 hex digits, braces, urn:uuid:
                return str(uuid_lib.UUID(text))
            except ValueError:
                pass
        problems.append((name, "invalid", "Must be a valid UUID."))
        return None

    @staticmethod
    def _text(name: str, value: Any, problems: list[Problem]) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append((name, "invalid", "Must be a string."))
            return ""
        if "\x00" in value:
            problems.append((name, "null_characters_not_allowed", "Null characters are not allowed."))
            return ""
        limit = TEXT_LIMITS[name]
        if len(value) > limit:
            problems.append((name, "max_length", f"Ensure this value has at most {limit} characters."))
            return ""
        return value

    @staticmethod
    def _date(name: str, value: Any, problems: list[Problem]) -> dt.datetime | None:
        if value is None or value == "":
            return None
        parsed = None
        if isinstance(value, str):
            try:
                parsed = fromisoformat(value)
            except ValueError:
                try:
                    parsed = fromisoformat(value.strip())
                except ValueError:
                    pass
        if parsed is None:
            problems.append((name, "invalid", DATE_MESSAGE))
            return None
        if parsed.tzinfo is None:
            problems.append((name, "naive_datetime", "Needs a UTC offset, e.g. +03:00 or Z."))
            return None
        try:
            return to_utc(parsed)
        except ValidationError as error:
            problems.extend(_problems(error, name))
            return None

    @staticmethod
    def _details(method: str | None, value: Any, problems: list[Problem]) -> dict:
        if value is None or value == "":
            value = {}
        elif isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                problems.append(("details", "invalid_json", "Must be a JSON object."))
                return {}
        if method is None:
            return {}
        try:
            return validate_details(method, value)
        except ValidationError as error:
            problems.extend(_problems(error, "details"))
            return {}


# Loading


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


class Loader:
    """Loads one batch after another; holds what a run keeps between batches (a few flags)."""

    def __init__(self, report: ErrorReport, *, update_existing: bool = False) -> None:
        self.report = report
        self.update_existing = update_existing
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


def import_rows(
    items: Iterable[Raw],
    *,
    report: ErrorReport,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    update_existing: bool = False,
    progress: Callable[[int], None] = lambda rows: None,
) -> ImportCounts:
    loader = Loader(report, update_existing=update_existing)
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


def records(rows: Iterable[dict[str, Any]]) -> Iterator[Raw]:
    """Rows made in Python (the demo data), as if read from a JSONL file."""
    for line, values in enumerate(rows, start=1):
        yield Raw(line, values, json.dumps(values, cls=DjangoJSONEncoder, ensure_ascii=False))


# Writing the format (the export and the generator)


def cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, uuid_lib.UUID):
        return str(value)
    return value


class Writer:
    """Writes rows (dicts by COLUMNS) in the import's own format: CSV with a header, or JSONL."""

    def __init__(self, out: TextIO, file_format: str) -> None:
        self.out = out
        self.file_format = file_format
        if file_format == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        values = {name: cell(row.get(name)) for name in COLUMNS}
        if self.file_format == "csv":
            values["details"] = json.dumps(values["details"] or {}, ensure_ascii=False)
            self.csv.writerow(["" if value is None else value for value in values.values()])
        else:
            self.out.write(json.dumps(values, ensure_ascii=False) + "\n")
