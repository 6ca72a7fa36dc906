"""Click-to-call and call outcomes. The network call to Asterisk happens outside any row lock."""

import uuid as uuid_lib
from contextlib import suppress
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from communications import selectors as communication_selectors
from communications import services as communication_services
from communications.models import Communication, Direction, Kind, Source, Status
from communications_project import observability
from communications_project.errors import NotFound, TransitionNotAllowed

from .ari import AriClient, AriConfig, TelephonyError
from .models import CallLog, CallState

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
        log.state = CallState.FAILED
        log.error = f"{error.code}: {error.detail}"
        log.save(update_fields=["state", "error"])
        observability.record_telephony_call(outcome=error.code, log=log)
        raise
    log.state = CallState.PLACED
    log.save(update_fields=["state"])
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


@transaction.atomic
def call_event(*, channel_id: str, event: str, cause: int | None = None, duration_sec: int | None = None) -> CallLog:
    """Record what the PBX reports. Repeats and any order are harmless; what is not given is kept."""
    log = (
        CallLog.objects.select_for_update()
        .filter(channel_id=channel_id)
        .exclude(state=CallState.FAILED)
        .order_by("-date_requested")
        .first()
    )
    if log is None:
        raise NotFound("No call with this channel ID.")
    now = timezone.now()
    state = EVENT_WORDS.get(event.strip().lower().replace("_", "").replace("-", ""))
    if state == CallState.ANSWERED:
        log.date_answered = log.date_answered or now
        if log.state in (CallState.REQUESTED, CallState.PLACED):
            log.state = CallState.ANSWERED  # never back from ended
    elif state == CallState.ENDED:
        log.date_ended = log.date_ended or now
        log.state = CallState.ENDED
    if cause is not None:
        log.hangup_cause = cause
    if duration_sec is not None:
        log.duration_sec = duration_sec
    log.save()
    details: dict[str, Any] = {"call_id": log.channel_id}
    if log.duration_sec is not None:
        details["duration_sec"] = log.duration_sec
    with suppress(NotFound):  # the communication was deleted; the call log keeps the outcome
        communication_services.communication_record_call(uuid=log.communication_id, details=details)
    return log
