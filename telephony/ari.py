"""The one outbound HTTP client of the service: Asterisk ARI (docs/TELEPHONY.md, shared/ARI-NOTES.md).

Every call goes through `AriClient._request`: a connect and a read timeout always, typed errors,
a retry only when the request provably never left (the connection was not made), and a circuit
breaker that answers at once while Asterisk is known to be down. ARI's 200 on an originate means
the call was *placed*, never that anyone answered.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from rest_framework import status

from communications_project.errors import DomainError

logger = logging.getLogger(__name__)


class TelephonyError(DomainError):
    pass


class TelephonyNotConfigured(TelephonyError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "telephony_not_configured"
    default_detail = "Telephony is not configured (ASTERISK_ARI_URL is not set)."


class TelephonyUnavailable(TelephonyError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "telephony_unavailable"
    default_detail = "Asterisk cannot be reached."


class TelephonyTimeout(TelephonyUnavailable):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "Asterisk did not answer in time; the call may or may not have been placed."


class TelephonyRejected(TelephonyError):
    status_code = status.HTTP_502_BAD_GATEWAY
    code = "telephony_rejected"


@dataclass(frozen=True)
class AriConfig:
    url: str
    username: str
    password: str
    context: str
    endpoint_template: str
    caller_id: str
    connect_timeout: float
    read_timeout: float
    ring_timeout: int

    @classmethod
    def from_settings(cls) -> "AriConfig":
        if not settings.ASTERISK_ARI_URL:
            raise TelephonyNotConfigured()
        return cls(
            url=settings.ASTERISK_ARI_URL,
            username=settings.ASTERISK_ARI_USERNAME,
            password=settings.ASTERISK_ARI_PASSWORD,
            context=settings.ASTERISK_CONTEXT,
            endpoint_template=settings.ASTERISK_ENDPOINT_TEMPLATE,
            caller_id=settings.ASTERISK_CALLER_ID,
            connect_timeout=settings.ASTERISK_CONNECT_TIMEOUT,
            read_timeout=settings.ASTERISK_READ_TIMEOUT,
            ring_timeout=settings.ASTERISK_RING_TIMEOUT,
        )


class CircuitBreaker:
    """Closed while Asterisk answers; open for `cooldown` seconds after `failures` misses in a row.

    Once the cool-down is over one request is let through; its outcome closes or re-opens it.
    Per process: each gunicorn worker learns on its own, after at most `failures` misses.
    """

    def __init__(self, *, failures: int, cooldown: float, clock=time.monotonic):
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None

    def before(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            if self.clock() - self._opened_at < self.cooldown:
                raise TelephonyUnavailable("Asterisk is down (several recent attempts failed); not trying now.")
            self._opened_at = None  # half-open: this request is the trial
            self._failures = self.threshold - 1

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = self.clock()
                logger.warning("Asterisk circuit breaker opened after %d failures", self._failures)

    def reset(self) -> None:
        self.success()


_breaker: CircuitBreaker | None = None
_breaker_lock = threading.Lock()


def breaker() -> CircuitBreaker:
    """The process-wide breaker, made from the settings on first use."""
    global _breaker
    with _breaker_lock:
        if _breaker is None:
            _breaker = CircuitBreaker(
                failures=settings.ASTERISK_BREAKER_FAILURES, cooldown=settings.ASTERISK_BREAKER_COOLDOWN
            )
        return _breaker


def reset_breaker() -> None:
    global _breaker
    with _breaker_lock:
        _breaker = None


def _never_sent(error: requests.ConnectionError) -> bool:
    """True when the connection was never made, so the request cannot have reached Asterisk."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return type(reason).__name__ == "NewConnectionError"


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]


class AriClient:
    CONNECT_RETRIES = 2

    def __init__(self, config: AriConfig, *, circuit: CircuitBreaker | None = None, session=None):
        self.config = config
        self.circuit = circuit or breaker()
        self.session = session or requests.Session()

    def _request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> Any:
        self.circuit.before()
        url = f"{self.config.url}/{path.lstrip('/')}"
        for attempt in range(self.CONNECT_RETRIES + 1):
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    auth=(self.config.username, self.config.password),
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                )
            except requests.ReadTimeout:
                self.circuit.failure()
                raise TelephonyTimeout()
            except requests.ConnectionError as error:
                if _never_sent(error) and attempt < self.CONNECT_RETRIES:
                    time.sleep(0.1 * (attempt + 1))
                    continue
                self.circuit.failure()
                raise TelephonyUnavailable(f"Asterisk cannot be reached: {type(error).__name__}.")
            break
        # Asterisk answered, so it is up, whatever it said.
        self.circuit.success()
        if response.status_code >= 400:
            raise TelephonyRejected(f"Asterisk refused ({response.status_code}): {_reason(response)}")
        try:
            return response.json()
        except ValueError:
            raise TelephonyRejected(f"Asterisk answered {response.status_code} with a body that is not JSON.")

    def originate(self, *, extension: str, phone: str, channel_id: str, variables: dict[str, str]) -> dict:
        """Ring the agent's `extension`; when answered, the dialplan dials `phone` (E.164 digits)."""
        return self._request(
            "POST",
            "channels",
            params={
                "endpoint": self.config.endpoint_template.format(extension=extension),
                "extension": phone,
                "context": self.config.context,
                "priority": 1,
                "callerId": self.config.caller_id,
                "timeout": self.config.ring_timeout,
                "channelId": channel_id,
            },
            body={"variables": variables},
        )
