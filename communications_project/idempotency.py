"""`Idempotency-Key` (SPEC §6.2): the same key and body within the TTL replays the first answer.

The key is claimed in its own committed transaction before the work starts, so a parallel retry
sees it at once (409 while in flight). With `atomic=True` the work and the stored answer commit
together: a key is answered exactly once or not at all.

With `atomic=True` the work's transaction also holds the claim's row lock. A request that dies
with its database connection (a PostgreSQL restart) cannot release its claim, but its lock goes
with the connection: an unanswered claim nobody holds is taken over by a retry within seconds
instead of the two minutes an unlocked (`atomic=False`) claim waits.
"""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .errors import DomainError
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[!-~]{1,255}$"  # visible ASCII, no spaces
KEY_RE = re.compile(KEY_PATTERN)
# A claim older than this with no answer belongs to a request that died; a retry may take it over.
ABANDONED_AFTER = dt.timedelta(minutes=2)
# An unanswered, unlocked claim of atomic work older than this lost its request (the owner locks
# it right after claiming; one that is slower than this finds the claim taken and answers 409).
ORPHANED_AFTER = dt.timedelta(seconds=2)


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request body."


class IdempotencyRequestInFlight(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "idempotency_request_in_flight"
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."


@dataclass(frozen=True)
class _Replay:
    status: int
    body: object
    location: str


def _fingerprint(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _is_lock_not_available(error: OperationalError) -> bool:
    return type(error.__cause__).__name__ == "LockNotAvailable"  # psycopg.errors.LockNotAvailable


@transaction.atomic
def _claim(*, user, scope: str, key: str, fingerprint: str, locked_while_working: bool) -> IdempotencyKey | _Replay:
    now = timezone.now()
    expires = now + dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user=user, scope=scope, key=key, request_hash=fingerprint, date_created=now, date_expires=expires
            )
    except IntegrityError:
        pass
    try:
        with transaction.atomic():
            existing = IdempotencyKey.objects.select_for_update(nowait=True).get(user=user, scope=scope, key=key)
    except OperationalError as error:
        if _is_lock_not_available(error):  # its request is running right now
            raise IdempotencyRequestInFlight() from None
        raise
    except IdempotencyKey.DoesNotExist:  # released a moment ago by a request that failed
        raise IdempotencyRequestInFlight() from None
    unanswered = existing.response_status is None
    abandoned = unanswered and existing.date_created < now - ABANDONED_AFTER
    orphaned = unanswered and locked_while_working and existing.date_created < now - ORPHANED_AFTER
    if existing.date_expires <= now or abandoned or orphaned:
        existing.request_hash = fingerprint
        existing.date_created, existing.date_expires = now, expires
        existing.response_status, existing.response_body, existing.response_location = None, None, ""
        existing.save()
        return existing
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if existing.response_status is None:
        raise IdempotencyRequestInFlight()
    return _Replay(existing.response_status, existing.response_body, existing.response_location)


# The rule OpenAPI cannot state, for the description of every operation that takes the header.
KEY_REUSE_RULE = (
    "The same Idempotency-Key with another body is 422 `idempotency_key_reused` (the IETF "
    "Idempotency-Key draft); while the first request runs, 409 `idempotency_request_in_flight`."
)


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The header as the schema states it: the pattern the server checks, and the reuse rule."""
    return OpenApiParameter(
        HEADER,
        {"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": 255},
        location=OpenApiParameter.HEADER,
        required=False,
        description=f"{description} {KEY_REUSE_RULE}",
    )


def _key_from(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY_RE.fullmatch(key):
        raise ValidationError(
            {HEADER: ValidationError("1 to 255 visible ASCII characters, no spaces.", code="invalid")}
        )
    return key


def run_idempotent(request: Request, execute: Callable[[], Response], *, atomic: bool = True) -> Response:
    """Run `execute` once per key; answer retries with the stored response."""
    key = _key_from(request)
    if key is None:
        return execute()
    claim = _claim(
        user=request.user,
        scope=f"{request.method} {request.path}",
        key=key,
        fingerprint=_fingerprint(request.data),
        locked_while_working=atomic,
    )
    if isinstance(claim, _Replay):
        headers = {"Idempotent-Replayed": "true"}
        if claim.location:
            headers["Location"] = claim.location
        return Response(claim.body, status=claim.status, headers=headers)
    try:
        with transaction.atomic() if atomic else nullcontext():
            if atomic and not _hold(claim):
                raise IdempotencyRequestInFlight()  # taken over meanwhile; that request answers
            response = execute()
            claim.response_status = response.status_code
            claim.response_body = response.data
            claim.response_location = response.headers.get("Location", "")
            claim.save(update_fields=["response_status", "response_body", "response_location"])
    except BaseException:
        # Nothing was answered: release the key so that a retry runs the request again.
        _still_ours(claim).delete()
        raise
    return response


def _still_ours(claim: IdempotencyKey):
    return IdempotencyKey.objects.filter(pk=claim.pk, date_created=claim.date_created, response_status__isnull=True)


def _hold(claim: IdempotencyKey) -> bool:
    """Lock the claim for the work's transaction, if it is still this request's."""
    return _still_ours(claim).select_for_update().exists()


def purge_expired() -> int:
    deleted, _ = IdempotencyKey.objects.filter(date_expires__lte=timezone.now()).delete()
    return deleted
