"""The attempt policy (docs/CONFIGURATION.md): what a planned communication's attempt leads to.

Pure decisions, no I/O: the attempt service (services.attempt_record) asks `next_step` under the
communication's row lock, then carries the step out through the services the API uses, each a
history entry with source `policy`.

- A `reached` attempt changes nothing: someone talked to the client; closing is theirs.
- An unsuccessful one (`no_answer`, `busy`, `wrong_number`, `left_message`) re-plans the
  communication `retry` after the attempt while it has fewer than `max_attempts` attempts, so it
  comes back to the operators' queue then (never earlier than it was planned already);
- the attempt that reaches `max_attempts` fails it, `fail_reason` after its outcome: the seed's
  "Аут, звонили несколько раз".
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from .models import AttemptOutcome, Communication, FailReason

# The fail reason an unsuccessful outcome leads to at the limit (a message left is not an answer).
FAIL_REASONS = {
    AttemptOutcome.NO_ANSWER: FailReason.NO_ANSWER,
    AttemptOutcome.BUSY: FailReason.BUSY,
    AttemptOutcome.WRONG_NUMBER: FailReason.WRONG_NUMBER,
    AttemptOutcome.LEFT_MESSAGE: FailReason.NO_ANSWER,
}


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    retry: dt.timedelta


@dataclass(frozen=True)
class Replan:
    date_planned_start: dt.datetime
    date_planned_finish: dt.datetime | None


@dataclass(frozen=True)
class Fail:
    fail_reason: str


def policy_for(method: str) -> Policy | None:
    """The policy for a method's communications; None when it is off (for all, or for this method)."""
    if not settings.ATTEMPTS_POLICY:
        return None
    max_attempts = settings.ATTEMPTS_MAX_BY_METHOD.get(method, settings.ATTEMPTS_MAX)
    if max_attempts == 0:
        return None
    minutes = settings.ATTEMPTS_RETRY_MINUTES_BY_METHOD.get(method, settings.ATTEMPTS_RETRY_MINUTES)
    return Policy(max_attempts=max_attempts, retry=dt.timedelta(minutes=minutes))


def next_step(communication: Communication, outcome: str) -> Replan | Fail | None:
    """What the attempt just counted on `communication` (attempts_count and last_attempt_at
    already include it) leads to; None: nothing."""
    if not communication.is_planned() or communication.is_final or outcome == AttemptOutcome.REACHED:
        return None
    policy = policy_for(communication.method_id)
    if policy is None:
        return None
    if communication.attempts_count >= policy.max_attempts:
        return Fail(fail_reason=FAIL_REASONS[AttemptOutcome(outcome)])
    start = communication.date_planned_start
    retry_at = communication.last_attempt_at + policy.retry
    if start is not None and start >= retry_at:
        return None  # already planned for later than the retry: it comes back then
    finish = communication.date_planned_finish
    # The planned window keeps its length.
    moved_finish = finish + (retry_at - start) if finish is not None and start is not None else None
    return Replan(date_planned_start=retry_at, date_planned_finish=moved_finish)
