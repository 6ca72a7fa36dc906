"""The import's file formats: reading CSV and JSONL records, the error report, and writing rows in
the same format (the export and the generator)."""

import csv
import datetime as dt
import json
import uuid as uuid_lib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from django.core.serializers.json import DjangoJSONEncoder

from communications_project import bulkload
from communications_project.bulkload import ImportFileError

if TYPE_CHECKING:
    from .loader import Row

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
REPORT_HEADER = ["line", "oracle_id", "column", "code", "message", "raw"]

Problem = tuple[str, str, str]  # column, code, message


@dataclass(slots=True)
class Raw:
    """One record of the file: its first line, its values by column (None: unreadable), its text."""

    line: int
    values: dict[str, Any] | None
    text: str
    problem: Problem | None = None


class ErrorReport(bulkload.ErrorReport):
    """CSV: line, oracle_id, column, code, message, the raw line (cut to 2,000 characters)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out, REPORT_HEADER)

    def row(self, raw: "Raw | Row", oracle_id: Any, column: str, code: str, message: str) -> None:
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
