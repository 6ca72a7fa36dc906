"""The one outbound HTTP client of the service: Asterisk ARI (docs/TELEPHONY.md, shared/ARI-NOTES.md).

Every call goes through `AriClient._request`: a connect and a read timeout always, typed errors,
a retry only when the request provably never left (the connection was not made), and a circuit
breaker that answers at once while Asterisk is known to be down. ARI's 200 on an originate means
the call was *placed*, never that anyone answered.
"""

import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import circuitbreaker
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from rest_framework import status
from urllib3.util import Retry

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


class AsteriskBreaker(circuitbreaker.CircuitBreaker):
    """Open for `recovery_timeout` seconds after `failure_threshold` misses in a row (connection
    refused, timed out); then requests go through again and the first miss re-opens it at once.

    Only a failure to get any answer counts: an answer, even a refusal, means Asterisk is up.
    Per process: each gunicorn worker learns on its own, after at most `failure_threshold` misses.
    """

    EXPECTED_EXCEPTION = (requests.ConnectionError, requests.Timeout)

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        super().__exit__(exc_type, exc_value, traceback)
        if exc_type is not None and self.is_failure(exc_type, exc_value) and self.opened:
            logger.warning("Asterisk circuit breaker opened after %d failures", self.failure_count)
        return False


_breaker: AsteriskBreaker | None = None
_breaker_lock = threading.Lock()


def breaker() -> AsteriskBreaker:
    """The process-wide breaker, made from the settings on first use."""
    global _breaker
    with _breaker_lock:
        if _breaker is None:
            _breaker = AsteriskBreaker(
                failure_threshold=settings.ASTERISK_BREAKER_FAILURES,
                recovery_timeout=settings.ASTERISK_BREAKER_COOLDOWN,
                name="asterisk",
            )
        return _breaker


def reset_breaker() -> None:
    global _breaker
    with _breaker_lock:
        _breaker = None


def _session() -> requests.Session:
    """A session that retries only what provably never left: urllib3's connect retries happen
    before a byte of the request is sent; reads, statuses and redirects are never retried, so an
    originate that reached Asterisk is never sent twice."""
    retry = Retry(
        total=None,
        connect=AriClient.CONNECT_RETRIES,
        read=False,
        redirect=False,
        status=0,
        other=0,
        backoff_factor=0.1,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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

    def __init__(self, config: AriConfig, *, circuit: AsteriskBreaker | None = None, session=None):
        self.config = config
        self.circuit = circuit or breaker()
        self.session = session or _session()

    def _request(
        self, method: str, path: str, *, params: dict | None = None, body: dict | None = None, missing_ok: bool = False
    ) -> Any:
        if self.circuit.opened:
            raise TelephonyUnavailable("Asterisk is down (several recent attempts failed); not trying now.")
        url = f"{self.config.url}/{path.lstrip('/')}"
        try:
            with self.circuit:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    auth=(self.config.username, self.config.password),
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                )
        except requests.ReadTimeout:
            raise TelephonyTimeout()
        except requests.ConnectionError as error:
            raise TelephonyUnavailable(f"Asterisk cannot be reached: {type(error).__name__}.")
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise TelephonyRejected(f"Asterisk refused ({response.status_code}): {_reason(response)}")
        try:
            return response.json()
        except ValueError:
            raise TelephonyRejected(f"Asterisk answered {response.status_code} with a body that is not JSON.")

    def channel(self, channel_id: str) -> dict | None:
        """The live channel, or None once Asterisk has destroyed it (404 "Channel not found")."""
        return self._request("GET", f"channels/{quote(channel_id, safe='')}", missing_ok=True)

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
