"""What an operator reads: the request id, JSON log lines and Prometheus metrics (docs/OPERATIONS.md).

The request id lives in a context variable for the duration of a request, and a logging filter
copies it onto every record, so any logger's line carries it without being handed it.

Metrics are prometheus-client's. Under gunicorn each worker is a process of its own; with
`PROMETHEUS_MULTIPROC_DIR` set (gunicorn.conf.py sets it) every worker writes its samples there
and `/metrics` adds them up, whichever worker answers the scrape.
"""

import contextvars
import logging
import re
from typing import Any

from prometheus_client import Counter, Histogram
from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# --- metrics -------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "communications_http_requests_total",
    "HTTP requests answered, by URL pattern and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "communications_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DATABASE_ERRORS = Counter(
    "communications_database_errors_total",
    "Requests answered 503 database_unavailable, by the database error raised.",
    ["error"],
)
TRANSITIONS = Counter(
    "communications_transitions_total",
    "Committed state-machine transitions, by the status reached.",
    ["status"],
)
TELEPHONY_CALLS = Counter(
    "communications_telephony_calls_total",
    "Click-to-call attempts, by outcome (placed, or the error code).",
    ["outcome"],
)
TELEPHONY_CALLS_ENDED = Counter(
    "communications_telephony_calls_ended_total",
    "Calls that ended, by how they ended (talked, agent_no_answer, ...: telephony's Outcome).",
    ["outcome"],
)

# --- logging -------------------------------------------------------------------------------------

_PHONE_RE = re.compile(r"(?<![\w-])\+?\d{10,15}(?![\w-])")
# Keys whose values never reach a log line, whatever logger sends them.
_SECRET_KEY_RE = re.compile(r"(password|secret|token|authorization|cookie|api_key|sessionid)", re.IGNORECASE)
# LogRecord's own attributes: everything else on a record came in through `extra`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_phone(phone: str) -> str:
    """`+79161234567` -> `+7916*****67`: enough to tell calls apart, not enough to dial."""
    keep = 5 if phone.startswith("+") else 4
    if len(phone) <= keep + 2:
        return "*" * len(phone)
    return phone[:keep] + "*" * (len(phone) - keep - 2) + phone[-2:]


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE_RE.sub(lambda match: mask_phone(match.group()), value)
    if isinstance(value, dict):
        return {key: "[redacted]" if _SECRET_KEY_RE.search(str(key)) else _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


class RequestContextFilter(logging.Filter):
    """Every record gets the current request id, and loses phone numbers and secrets.

    A safety net under the code's own care (services log masked phones themselves): a number in a
    message or an `extra` field is masked, a field named like a secret is replaced.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        message = record.getMessage()
        scrubbed = _scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        for key in set(vars(record)) - _RECORD_ATTRS:
            if key == "request_id":
                continue
            if _SECRET_KEY_RE.search(key):
                setattr(record, key, "[redacted]")
            else:
                setattr(record, key, _scrub(getattr(record, key)))
        return True


class JsonLogFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id, then `extra` fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Django's request loggers attach the request object itself; its repr says nothing new.
        log_data.pop("request", None)
        log_data.pop("server_time", None)
        return log_data


# --- one line and one sample per event -----------------------------------------------------------

_transitions_log = logging.getLogger("communications.transitions")
_telephony_log = logging.getLogger("telephony.calls")


def record_transition(*, uuid: Any, transition: str, status_from: str, status_to: str, source: str) -> None:
    TRANSITIONS.labels(status=status_to).inc()
    _transitions_log.info(
        "transition",
        extra={
            "communication_uuid": str(uuid),
            "transition": transition,
            "status_from": status_from,
            "status_to": status_to,
            "source": source,
        },
    )


def record_telephony_call(*, outcome: str, log: Any) -> None:
    """`log` is the call's CallLog (duck-typed: this floor does not import the telephony app)."""
    TELEPHONY_CALLS.labels(outcome=outcome).inc()
    _telephony_log.info(
        "telephony call",
        extra={
            "outcome": outcome,
            "communication_uuid": str(log.communication_id),
            "channel_id": log.channel_id,
            "extension": log.extension,
            "phone": mask_phone(log.phone),
        },
    )
