"""Click-to-call and call outcomes. The network call to Asterisk happens outside any row lock."""

import logging
import uuid as uuid_lib
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from communications import selectors as communication_selectors
from communications import services as communication_services
from communications.models import AttemptOutcome, Communication, Direction, Kind, Source, Status
from communications_project import observability
from communications_project.errors import NotFound, TransitionNotAllowed

from .ari import AriClient, AriConfig, TelephonyError, TelephonyTimeout
from .models import CallLog, CallState, ClientOutcome, Outcome

logger = logging.getLogger(__name__)

CALLABLE_STATUSES = (Status.CREATED, Status.IN_WORK)
# channelIds derived from an Idempotency-Key: the same click retried gets the same channel, and
# Asterisk refuses a second channel with a live one's ID (409) instead of ringing twice.
CHANNEL_NAMESPACE = uuid_lib.UUID("6f0c5b3e-5d2a-4c59-9a0e-2a8f4b1c7d11")


def _check_callable(communication: Communication) -> None:
    if communication.method_id != "call" or communication.direction != Direction.OUTBOUND:
        raise TransitionNotAllowed("Only an outbound call can be dialled.")
    if communication.status not in CALLABLE_STATUSES:
        raise TransitionNotAllowed(f"Cannot dial a communication that is {communication.status}.")


def channel_id_for(*, user_id: int | None, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid_lib.uuid4())
    return str(uuid_lib.uuid5(CHANNEL_NAMESPACE, f"{user_id}:{idempotency_key}"))


def call_place(
    *,
    uuid: uuid_lib.UUID | str,
    extension: str,
    phone: str | None,
    actor,
    idempotency_key: str | None = None,
) -> CallLog:
    """Ask Asterisk to ring `extension` and then dial the client. Raises TelephonyError subclasses.

    The attempt is logged first (committed; a failure, "not configured" included, is kept there),
    the network call made with no lock held, and only then is the communication started (a
    planned one goes in_work) under its row lock.
    """
    communication = communication_selectors.communication_get(uuid)
    _check_callable(communication)
    phone = phone or communication.details.get("phone")
    if not phone:
        raise ValidationError({"phone": ValidationError("The communication has no phone; give one.", code="required")})
    log = CallLog.objects.create(
        communication=communication,
        channel_id=channel_id_for(user_id=actor.pk, idempotency_key=idempotency_key),
        extension=extension,
        phone=phone,
        requested_by=actor,
        date_requested=timezone.now(),
    )
    try:
        AriClient(AriConfig.from_settings()).originate(
            extension=extension,
            phone=phone.lstrip("+"),
            channel_id=log.channel_id,
            variables={"COMMUNICATION_UUID": str(communication.uuid)},
        )
    except TelephonyError as error:
        # A timed-out originate may have rung all the same: the call stays open, so the events
        # listener follows it and its reconciliation ends it if ARI never knew the channel.
        log.state = CallState.PLACED if isinstance(error, TelephonyTimeout) else CallState.FAILED
        log.error = f"{error.code}: {error.detail}"
        log.save(update_fields=["state", "error"])
        observability.record_telephony_call(outcome=error.code, log=log)
        raise
    # Only from requested: a channel that failed at once may already have been reported ended.
    CallLog.objects.filter(pk=log.pk, state=CallState.REQUESTED).update(state=CallState.PLACED)
    log.refresh_from_db()
    observability.record_telephony_call(outcome="placed", log=log)
    _after_placed(communication, log)
    return log


def _after_placed(communication: Communication, log: CallLog) -> None:
    """The call rings: a planned communication starts, and its details name the call.

    Either may have changed meanwhile (started, closed, deleted): the call rings all the same.
    """
    if communication.kind == Kind.PLANNED and communication.status == Status.CREATED:
        with suppress(TransitionNotAllowed, NotFound):
            communication_services.communication_transition(
                uuid=communication.uuid, name="start", actor=log.requested_by, source=Source.TELEPHONY
            )
    with suppress(NotFound):
        communication_services.communication_record_call(uuid=communication.uuid, details={"call_id": log.channel_id})


# Words PBXs and dialplans use, mapped to ours; anything else changes no state.
EVENT_WORDS = {
    "answered": CallState.ANSWERED,
    "answer": CallState.ANSWERED,
    "up": CallState.ANSWERED,
    "connected": CallState.ANSWERED,
    "hangup": CallState.ENDED,
    "hungup": CallState.ENDED,
    "ended": CallState.ENDED,
    "end": CallState.ENDED,
    "destroyed": CallState.ENDED,
    "channeldestroyed": CallState.ENDED,
}
OPEN_STATES = (CallState.REQUESTED, CallState.PLACED, CallState.ANSWERED)
# Dial()'s DIALSTATUS for the client's leg (ARI's `Dial` event, or ${DIALSTATUS} in the dialplan).
DIAL_STATUSES = {
    "ANSWER": ClientOutcome.ANSWERED,
    "BUSY": ClientOutcome.BUSY,
    "NOANSWER": ClientOutcome.NO_ANSWER,
    "CANCEL": ClientOutcome.CANCELLED,
    "CONGESTION": ClientOutcome.CONGESTION,
    "CHANUNAVAIL": ClientOutcome.UNAVAILABLE,
}


def client_outcome_for(dialstatus: Any) -> str | None:
    """ANSWER → answered, …; blank (still ringing) or unknown → None."""
    if not isinstance(dialstatus, str):
        return None
    return DIAL_STATUSES.get(dialstatus.strip().upper())


def _event_state(event: str) -> str | None:
    return EVENT_WORDS.get(event.strip().lower().replace("_", "").replace("-", ""))


@transaction.atomic
def call_event(
    *,
    channel_id: str,
    event: str,
    at: datetime | None = None,
    cause: int | None = None,
    cause_txt: str | None = None,
    duration_sec: int | None = None,
    client_outcome: str | None = None,
) -> CallLog:
    """Apply what the PBX reports to a call: the one rule for the ARI listener and the HTTP endpoint.

    Idempotent and order-free: a repeat changes nothing, an `answered` after the end does not reopen
    the call, a value not given (None) never blanks a stored one. `at` is when it happened (ARI's
    event timestamp; now if not given). The duration, when not given, runs from answer to end, for
    an end the PBX reported with its cause (not one the reconciliation found: its time is a guess).
    """
    log = (
        CallLog.objects.select_for_update()
        .filter(channel_id=channel_id)
        .exclude(state=CallState.FAILED)
        .order_by("-date_requested")
        .first()
    )
    if log is None:
        raise NotFound("No call with this channel ID.")
    before = _call_snapshot(log)
    at = at or timezone.now()
    state = _event_state(event)
    if state == CallState.ANSWERED:
        # A late "answered" stamped after the end is noise: it neither reopens nor dates the call.
        if log.date_answered is None and (log.date_ended is None or at <= log.date_ended):
            log.date_answered = at
        if log.state in (CallState.REQUESTED, CallState.PLACED):
            log.state = CallState.ANSWERED
    elif state == CallState.ENDED:
        log.date_ended = log.date_ended or at
        log.state = CallState.ENDED
    if cause is not None:
        log.hangup_cause = cause
    if cause_txt:
        log.hangup_cause_txt = cause_txt[:64]
    if client_outcome and (not log.client_outcome or client_outcome == ClientOutcome.ANSWERED):
        log.client_outcome = client_outcome  # if any leg answered, the client answered
    if duration_sec is not None:
        log.duration_sec = duration_sec
    elif log.duration_sec is None and log.hangup_cause is not None and log.date_answered and log.date_ended:
        log.duration_sec = max(0, round((log.date_ended - log.date_answered).total_seconds()))
    changed = [name for name, value in _call_snapshot(log).items() if value != before[name]]
    if not changed:
        return log
    log.save(update_fields=changed)
    if "state" in changed and log.state == CallState.ENDED:
        transaction.on_commit(observability.TELEPHONY_CALLS_ENDED.labels(outcome=log.outcome).inc)
        logger.info(
            "call %s ended: %s, cause %s, %s s",
            log.channel_id,
            log.outcome,
            log.hangup_cause,
            log.duration_sec,
            extra={
                "channel_id": log.channel_id,
                "communication": str(log.communication_id),
                "outcome": log.outcome,
                "hangup_cause": log.hangup_cause,
                "duration_sec": log.duration_sec,
            },
        )
    details: dict[str, Any] = {"call_id": log.channel_id}
    if log.duration_sec is not None:
        details["duration_sec"] = log.duration_sec
    with suppress(NotFound):  # the communication was deleted; the call log keeps the outcome
        communication_services.communication_record_call(uuid=log.communication_id, details=details)
        if log.state == CallState.ENDED:
            _count_attempt(log)
    return log


# A call's outcome as an attempt's: talked is reached, the client's busy line is busy; any other end
# (no answer on either leg, a leg that failed, an end no event reported) reached nobody.
ATTEMPT_OUTCOMES = {Outcome.TALKED: AttemptOutcome.REACHED, Outcome.CLIENT_BUSY: AttemptOutcome.BUSY}


def _count_attempt(log: CallLog) -> None:
    """An ended call is an attempt to reach the client, counted once (the attempt policy follows).
    A later event that changes the ended call's outcome (its client leg reported after the
    hangup) corrects the attempt's outcome instead."""
    outcome = ATTEMPT_OUTCOMES.get(log.outcome, AttemptOutcome.NO_ANSWER)
    if log.attempt_id is not None:
        communication_services.attempt_correct_outcome(attempt_uuid=log.attempt_id, outcome=outcome)
        return
    log.attempt = communication_services.attempt_record(
        uuid=log.communication_id,
        actor=log.requested_by,
        source=Source.TELEPHONY,
        method="call",
        outcome=outcome,
        date=log.date_requested,
        call_id=log.channel_id,
        on_final=True,  # the salesperson may have closed it while the call went on
    )
    log.save(update_fields=["attempt"])


CALL_EVENT_FIELDS = (
    "state",
    "date_answered",
    "date_ended",
    "hangup_cause",
    "hangup_cause_txt",
    "client_outcome",
    "duration_sec",
)


def _call_snapshot(log: CallLog) -> dict[str, Any]:
    return {name: getattr(log, name) for name in CALL_EVENT_FIELDS}


def calls_open(*, placed_before: datetime | None = None) -> list[CallLog]:
    """Calls the PBX may still be working on (placed or answered), oldest first."""
    queryset = CallLog.objects.filter(state__in=[CallState.PLACED, CallState.ANSWERED])
    if placed_before is not None:
        queryset = queryset.filter(state=CallState.PLACED, date_requested__lt=placed_before)
    return list(queryset.order_by("date_requested").only("id", "channel_id", "state", "date_requested"))


def channels_requested() -> list[str]:
    """Channels being originated right now (the web worker waits for ARI's answer)."""
    recent = timezone.now() - timedelta(hours=1)
    queryset = CallLog.objects.filter(state=CallState.REQUESTED, date_requested__gte=recent)
    return list(queryset.values_list("channel_id", flat=True))


def call_is_open(channel_id: str) -> bool:
    return CallLog.objects.filter(channel_id=channel_id, state__in=OPEN_STATES).exists()
