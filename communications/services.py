"""Every write to a communication: keyword-only, atomic, recorded in the history.

A write re-reads its row under `select_for_update()` inside one transaction, so two requests
racing on one communication never both win; the loser sees the winner's result.
"""

import datetime as dt
import uuid as uuid_lib
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from communications_project import observability
from communications_project.errors import NotFound, PreconditionFailed, TransitionNotAllowed
from communications_project.filters import parse_uuid
from dicts.models import CommunicationMethod

from . import events, policy, selectors
from .details import validate_details
from .models import (
    Attempt,
    AttemptOutcome,
    Communication,
    CommunicationHistory,
    FailReason,
    HistoryAction,
    Kind,
    Source,
)

# A client's clock may run a little ahead of ours; "not in the future" allows this much.
CLOCK_SKEW = dt.timedelta(minutes=1)

# Fields a PATCH may change. Status, kind, method, direction and the dates the state machine sets
# are not among them: they change only through transitions, or never.
EDITABLE_FIELDS = (
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "comment",
    "result",
    "details",
    "date_planned_start",
    "date_planned_finish",
)
PLANNED_DATE_FIELDS = ("date_planned_start", "date_planned_finish")

# Fields whose changes the history records.
TRACKED_FIELDS = (
    "method_id",
    "kind",
    "direction",
    "status",
    *EDITABLE_FIELDS,
    "date_start",
    "date_finish",
    "cancel_reason",
    "fail_reason",
)

Actor = AbstractBaseUser | None


def _actor_or_none(actor: Any) -> Actor:
    return actor if actor is not None and actor.is_authenticated else None


def _snapshot(communication: Communication) -> dict[str, Any]:
    return {field: getattr(communication, field) for field in TRACKED_FIELDS}


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {field: [before[field], after[field]] for field in before if before[field] != after[field]}


def _record(
    communication: Communication,
    *,
    actor: Actor,
    source: str,
    action: str,
    changes: dict[str, list[Any]],
    transition: str = "",
    status_from: str = "",
    status_to: str = "",
) -> CommunicationHistory:
    """The one place a change is recorded: its history entry and its change-feed event, together."""
    entry = CommunicationHistory.objects.create(
        communication=communication,
        date=communication.date_updated,
        actor=actor,
        source=source,
        action=action,
        transition=transition,
        status_from=status_from,
        status_to=status_to,
        changes=changes,
    )
    events.record(communication, entry)
    return entry


def _lock(uuid: uuid_lib.UUID | str, *, deleted: bool = False) -> Communication:
    queryset = Communication.objects.deleted() if deleted else Communication.objects.alive()
    # With what the change's event shows (the full view): one query, locking only the row. The
    # updater is not joined: every write sets it to its actor.
    queryset = queryset.select_related("created_by").annotate(oracle_id=selectors.oracle_id())
    try:
        # From a URL, the canonical form only, as the schema states it (and as reads take it).
        key = uuid if isinstance(uuid, uuid_lib.UUID) else parse_uuid(str(uuid))
        return queryset.select_for_update(of=("self",)).get(uuid=key)
    except (Communication.DoesNotExist, ValueError):
        raise NotFound("Communication not found.")


def _check_version(communication: Communication, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != communication.version:
        raise PreconditionFailed(f"Communication is at version {communication.version}, not {expected_version}.")


def _save(communication: Communication, *, actor: Actor, fields: list[str]) -> None:
    communication.version += 1
    communication.date_updated = timezone.now()
    communication.updated_by = actor
    communication.save(update_fields=[*fields, "version", "date_updated", "updated_by"])


def check_not_in_future(value: dt.datetime, *, attr: str, now: dt.datetime | None = None) -> None:
    if value > (now or timezone.now()) + CLOCK_SKEW:
        raise ValidationError({attr: ValidationError("Must not be in the future.", code="future")})


def check_planned_dates(kind: str, start: dt.datetime | None, finish: dt.datetime | None) -> None:
    if kind == Kind.PLANNED:
        if start is None:
            raise ValidationError(
                {"date_planned_start": ValidationError("Required for a planned communication.", code="required")}
            )
        if finish is not None and finish < start:
            raise ValidationError(
                {"date_planned_finish": ValidationError("Must not be before the planned start.", code="invalid")}
            )
    else:
        for attr, value in (("date_planned_start", start), ("date_planned_finish", finish)):
            if value is not None:
                raise ValidationError(
                    {attr: ValidationError("Only a planned communication has planned dates.", code="not_planned")}
                )


def check_method_active(code: str, method: CommunicationMethod | None) -> CommunicationMethod:
    """`method` is the dictionary's row for `code`, or None when there is none."""
    if method is None:
        raise ValidationError({"method": ValidationError(f"Unknown method '{code}'.", code="invalid_choice")})
    if not method.is_active:
        raise ValidationError({"method": ValidationError(f"Method '{code}' is not in use.", code="method_inactive")})
    return method


def _active_method(code: str) -> CommunicationMethod:
    return check_method_active(code, CommunicationMethod.objects.filter(code=code).first())


def check_finish_after_start(date_start: dt.datetime | None, date_finish: dt.datetime) -> None:
    if date_start and date_finish < date_start:
        raise ValidationError({"date_finish": ValidationError("Must not be before the start.", code="before_start")})


FAIL_REASONS = tuple(FailReason.values)


def check_fail_reason(fail_reason: Any) -> str:
    if fail_reason not in FAIL_REASONS:
        raise ValidationError(
            {
                "fail_reason": ValidationError(
                    f"Required; one of: {', '.join(FailReason.values)}.", code="invalid_choice"
                )
            }
        )
    return fail_reason


@transaction.atomic
def communication_create(
    *,
    actor: Actor,
    source: str,
    method: str,
    kind: str,
    direction: str,
    client_uuid: uuid_lib.UUID,
    employee_uuid: uuid_lib.UUID | None = None,
    dealer_uuid: uuid_lib.UUID | None = None,
    subject: str = "",
    comment: str = "",
    result: str = "",
    details: dict[str, Any] | None = None,
    date_planned_start: dt.datetime | None = None,
    date_planned_finish: dt.datetime | None = None,
    date_start: dt.datetime | None = None,
) -> Communication:
    actor = _actor_or_none(actor)
    method_obj = _active_method(method)
    check_planned_dates(kind, date_planned_start, date_planned_finish)
    now = timezone.now()
    if kind == Kind.ACTUAL:
        if date_start is None:
            date_start = now
        check_not_in_future(date_start, attr="date_start")
    elif date_start is not None:
        raise ValidationError(
            {
                "date_start": ValidationError(
                    "A planned communication starts with the start transition.", code="not_actual"
                )
            }
        )
    communication = Communication(
        method=method_obj,
        kind=kind,
        direction=direction,
        status=Communication.initial_status(kind),
        client_uuid=client_uuid,
        employee_uuid=employee_uuid,
        dealer_uuid=dealer_uuid,
        subject=subject,
        comment=comment,
        result=result,
        details=validate_details(method, details if details is not None else {}),
        date_planned_start=date_planned_start,
        date_planned_finish=date_planned_finish,
        date_start=date_start,
        date_created=now,
        date_updated=now,
        created_by=actor,
        updated_by=actor,
    )
    communication.save(force_insert=True)
    initial = {field: value for field, value in _snapshot(communication).items() if value not in (None, "", {})}
    _record(
        communication,
        actor=actor,
        source=source,
        action=HistoryAction.CREATE,
        changes={field: [None, value] for field, value in initial.items()},
        status_to=communication.status,
    )
    return communication


@transaction.atomic
def communication_update(
    *,
    uuid: uuid_lib.UUID | str,
    actor: Actor,
    source: str,
    data: dict[str, Any],
    expected_version: int | None = None,
) -> Communication:
    """Change the editable fields given in `data`; a field left out keeps its value.

    `details` is merged key by key (JSON merge patch): a key set to null is removed.
    """
    actor = _actor_or_none(actor)
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {key: ValidationError("This field cannot be changed.", code="read_only") for key in unknown}
        )
    communication = _lock(uuid)
    _check_version(communication, expected_version)
    if communication.is_final:
        raise TransitionNotAllowed(f"Communication is {communication.status}; a final communication cannot be changed.")
    before = _snapshot(communication)
    for field, value in data.items():
        if field == "details":
            value = validate_details(communication.method_id, _merge(communication.details, value))
        setattr(communication, field, value)
    if any(field in data for field in PLANNED_DATE_FIELDS):
        check_planned_dates(communication.kind, communication.date_planned_start, communication.date_planned_finish)
    changes = _diff(before, _snapshot(communication))
    if not changes:
        return communication
    _save(communication, actor=actor, fields=list(changes))
    _record(communication, actor=actor, source=source, action=HistoryAction.UPDATE, changes=changes)
    return communication


def _merge(current: dict[str, Any], patch: Any) -> Any:
    """JSON merge patch of one level: keys in `patch` replace, a null removes."""
    if not isinstance(patch, dict):
        return patch  # validate_details reports the wrong type
    merged = {**current, **patch}
    return {key: value for key, value in merged.items() if value is not None}


def _transition_params(communication: Communication, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and complete what a transition is given; the transition itself only assigns."""
    now = timezone.now()
    if name == "start":
        date_start = params.get("date_start") or now
        check_not_in_future(date_start, attr="date_start")
        return {"date_start": date_start}
    if name == "close":
        date_finish = params.get("date_finish") or now
        check_not_in_future(date_finish, attr="date_finish")
        check_finish_after_start(communication.date_start, date_finish)
        return {"date_finish": date_finish, "result": params.get("result")}
    if name == "fail":
        fail_reason = check_fail_reason(params.get("fail_reason"))
        return {"fail_reason": fail_reason, "comment": params.get("comment")}
    if name == "cancel":
        return {"cancel_reason": params.get("cancel_reason") or ""}
    raise ValueError(f"Unknown transition {name!r}")


@transaction.atomic
def communication_transition(
    *,
    uuid: uuid_lib.UUID | str,
    name: str,
    actor: Actor,
    source: str,
    expected_version: int | None = None,
    **params: Any,
) -> Communication:
    """Run the transition `name` (a method of Communication: start, close, fail, cancel)."""
    actor = _actor_or_none(actor)
    transitions = Communication.transitions()
    if name not in transitions:
        raise ValueError(f"Unknown transition {name!r}")
    communication = _lock(uuid)
    _check_version(communication, expected_version)
    method = getattr(communication, name)
    if not can_proceed(method):
        action = transitions[name].custom["action"]
        raise TransitionNotAllowed(
            f"Cannot {action}: the communication is {communication.kind} and {communication.status}."
        )
    kwargs = _transition_params(communication, name, params)
    before = _snapshot(communication)
    method(**kwargs)
    changes = _diff(before, _snapshot(communication))
    _save(communication, actor=actor, fields=list(changes))
    _record(
        communication,
        actor=actor,
        source=source,
        action=HistoryAction.TRANSITION,
        transition=name,
        status_from=before["status"],
        status_to=communication.status,
        changes=changes,
    )
    # One log line and one sample per transition that actually committed.
    transaction.on_commit(
        partial(
            observability.record_transition,
            uuid=communication.uuid,
            transition=name,
            status_from=before["status"],
            status_to=communication.status,
            source=source,
        )
    )
    return communication


@transaction.atomic
def communication_delete(
    *, uuid: uuid_lib.UUID | str, actor: Actor, source: str, expected_version: int | None = None
) -> Communication:
    """Soft delete: the row stays (restorable in admin) but the API no longer finds it."""
    actor = _actor_or_none(actor)
    communication = _lock(uuid)
    _check_version(communication, expected_version)
    communication.date_deleted = timezone.now()
    _save(communication, actor=actor, fields=["date_deleted"])
    _record(communication, actor=actor, source=source, action=HistoryAction.DELETE, changes={})
    return communication


@transaction.atomic
def communication_restore(*, uuid: uuid_lib.UUID | str, actor: Actor, source: str) -> Communication:
    actor = _actor_or_none(actor)
    communication = _lock(uuid, deleted=True)
    communication.date_deleted = None
    _save(communication, actor=actor, fields=["date_deleted"])
    _record(communication, actor=actor, source=source, action=HistoryAction.RESTORE, changes={})
    return communication


# What telephony learns about a call and keeps in `details` (SPEC §5).
CALL_DETAIL_KEYS = ("call_id", "duration_sec", "recording_url")


@transaction.atomic
def communication_record_call(*, uuid: uuid_lib.UUID | str, details: dict[str, Any]) -> Communication:
    """Merge call facts into `details`, whatever the status: an outcome often arrives after the
    salesperson has already closed the communication."""
    unknown = set(details) - set(CALL_DETAIL_KEYS)
    if unknown:
        raise ValueError(f"Not call details: {sorted(unknown)}")
    communication = _lock(uuid)
    before = _snapshot(communication)
    communication.details = validate_details(communication.method_id, {**communication.details, **details})
    changes = _diff(before, _snapshot(communication))
    if changes:
        _save(communication, actor=None, fields=list(changes))
        _record(communication, actor=None, source=Source.TELEPHONY, action=HistoryAction.UPDATE, changes=changes)
    return communication


# Attempts (docs/API.md, the policy in communications/policy.py)

# What an attempt keeps on its communication, in the attempt's transaction.
ATTEMPT_FIELDS = ("attempts_count", "last_attempt_at", "last_attempt_outcome")
ATTEMPT_OUTCOMES = tuple(AttemptOutcome.values)


def check_attempt_outcome(outcome: Any) -> str:
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValidationError(
            {"outcome": ValidationError(f"One of: {', '.join(ATTEMPT_OUTCOMES)}.", code="invalid_choice")}
        )
    return outcome


def _attempt_snapshot(communication: Communication) -> dict[str, Any]:
    return {field: getattr(communication, field) for field in ATTEMPT_FIELDS}


@transaction.atomic
def attempt_record(
    *,
    uuid: uuid_lib.UUID | str,
    actor: Actor,
    source: str,
    method: str,
    outcome: str,
    date: dt.datetime | None = None,
    comment: str = "",
    call_id: str = "",
    on_final: bool = False,
) -> Attempt:
    """Record a try to reach the client, count it on the communication and apply the attempt policy.

    All in one transaction under the communication's row lock: concurrent attempts on one
    communication are counted one after the other, each exactly once. The count is a history entry
    (source: who recorded it); a policy step is another, with source `policy`, made through the
    same services as the API's. A final communication takes no attempt (409) unless `on_final`:
    telephony records a call that ended after the salesperson closed it, and the policy leaves it.
    """
    actor = _actor_or_none(actor)
    check_attempt_outcome(outcome)
    method_obj = _active_method(method)
    now = timezone.now()
    date = date or now
    check_not_in_future(date, attr="date", now=now)
    communication = _lock(uuid)
    if communication.is_final and not on_final:
        raise TransitionNotAllowed(f"Communication is {communication.status}; a final communication takes no attempts.")
    if date < communication.date_created - CLOCK_SKEW:
        raise ValidationError(
            {"date": ValidationError("Must not be before the communication was created.", code="before_created")}
        )
    attempt = Attempt.objects.create(
        communication=communication,
        method=method_obj,
        outcome=outcome,
        date=date,
        comment=comment,
        source=source,
        call_id=call_id,
        created_by=actor,
        date_created=now,
    )
    before = _attempt_snapshot(communication)
    communication.attempts_count += 1
    if communication.last_attempt_at is None or date >= communication.last_attempt_at:
        communication.last_attempt_at, communication.last_attempt_outcome = date, outcome
    changes = _diff(before, _attempt_snapshot(communication))
    _save(communication, actor=actor, fields=list(changes))
    _record(communication, actor=actor, source=source, action=HistoryAction.UPDATE, changes=changes)
    _apply_policy(communication, outcome=outcome, actor=actor)
    return attempt


def _apply_policy(communication: Communication, *, outcome: str, actor: Actor) -> None:
    step = policy.next_step(communication, outcome)
    if isinstance(step, policy.Replan):
        data = {"date_planned_start": step.date_planned_start}
        if step.date_planned_finish is not None:
            data["date_planned_finish"] = step.date_planned_finish
        communication_update(uuid=communication.uuid, actor=actor, source=Source.POLICY, data=data)
    elif isinstance(step, policy.Fail):
        communication_transition(
            uuid=communication.uuid, name="fail", actor=actor, source=Source.POLICY, fail_reason=step.fail_reason
        )


@transaction.atomic
def attempt_correct_outcome(*, attempt_uuid: uuid_lib.UUID | str, outcome: str) -> Attempt:
    """A better-informed outcome for an attempt already counted (telephony: a call's client leg
    reported after its hangup). The attempt and, if it is the latest, the communication's
    `last_attempt_outcome` change; the count does not, and no policy step is taken again."""
    check_attempt_outcome(outcome)
    communication_uuid = Attempt.objects.filter(uuid=attempt_uuid).values_list("communication_id", flat=True).first()
    if communication_uuid is None:
        raise NotFound("Attempt not found.")
    communication = _lock(communication_uuid)  # the communication first, as attempt_record locks
    attempt = Attempt.objects.select_for_update().get(uuid=attempt_uuid)
    if attempt.outcome == outcome:
        return attempt
    attempt.outcome = outcome
    attempt.save(update_fields=["outcome"])
    latest = Attempt.objects.filter(communication_id=communication.uuid).order_by("-date", "-date_created").first()
    if latest is not None and latest.uuid == attempt.uuid and communication.last_attempt_outcome != outcome:
        before = _attempt_snapshot(communication)
        communication.last_attempt_outcome = outcome
        changes = _diff(before, _attempt_snapshot(communication))
        _save(communication, actor=None, fields=list(changes))
        _record(communication, actor=None, source=attempt.source, action=HistoryAction.UPDATE, changes=changes)
    return attempt
