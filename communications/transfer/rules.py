"""The rules a row of the file must pass: the API's and the state machine's, from the same code
(the per-method `details` validators, the methods dictionary read once per run, the model's enums
and transition table, the services' date rules). A row they accept never reaches a database CHECK
constraint."""

import datetime as dt
import json
import re
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from communications_project.fields import to_utc
from dicts.models import CommunicationMethod
from id_translations.models import ORACLE_ID_MAX, parse_oracle_id

from ..details import validate_details
from ..limits import SUBJECT_MAX, TEXT_MAX
from ..models import Communication, Direction, Kind, Status
from ..services import (
    check_fail_reason,
    check_finish_after_start,
    check_method_active,
    check_not_in_future,
    check_planned_dates,
)
from .formats import Problem

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
TEXT_LIMITS = {
    "subject": SUBJECT_MAX,
    "comment": TEXT_MAX,
    "result": TEXT_MAX,
    "cancel_reason": TEXT_MAX,
    # Checked against the choices when the row is failed, must be empty otherwise.
    "fail_reason": Communication._meta.get_field("fail_reason").max_length,
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
fromisoformat = dt.datetime.fromisoformat
DATE_MESSAGE = "Must be an ISO 8601 date-time with an offset, e.g. 2024-05-01T10:30:00+03:00."

# The enums' values as plain strings: `Kind.values` builds a list on each access (hot loop).
KINDS, DIRECTIONS, STATUSES = (tuple(enum.values) for enum in (Kind, Direction, Status))
ACTUAL, PLANNED = Kind.ACTUAL.value, Kind.PLANNED.value
CREATED, IN_WORK, DONE, FAILED, CANCELLED = (
    status.value for status in (Status.CREATED, Status.IN_WORK, Status.DONE, Status.FAILED, Status.CANCELLED)
)


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
