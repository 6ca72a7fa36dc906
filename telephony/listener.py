"""The ARI events listener behind `manage.py telephony_events` (docs/TELEPHONY.md, shared/ARI-NOTES.md).

One loop: hold ARI's WebSocket (`/ari/events?app=…&subscribeAll=true`), turn the events of the
channels the service originated into `services.call_event` calls, and on every (re)connect ask ARI
about the calls still open, since events sent while no one listened are lost. Reconnects with
exponential backoff and jitter; writes a heartbeat row (`EventListener`); stops cleanly on request.
"""

import base64
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from communications_project.backoff import backoff
from communications_project.errors import DATABASE_UNAVAILABLE_ERRORS, NotFound

from . import services
from .ari import AriClient, AriConfig, TelephonyError
from .models import CallState, EventListener, ListenerState

logger = logging.getLogger(__name__)

# Every channel on the PBX reports here (subscribeAll); these are the only types that move a call.
HANDLED_TYPES = frozenset({"ChannelCreated", "ChannelStateChange", "Dial", "ChannelDestroyed"})


def events_url(config: AriConfig) -> str:
    """`http://pbx:8088/ari` → `ws://pbx:8088/ari/events?app=crm&subscribeAll=true` (https → wss)."""
    base = settings.ASTERISK_ARI_EVENTS_URL or f"{config.url}/events"
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = urlencode({"app": settings.ASTERISK_ARI_APP, "subscribeAll": "true"})
    return urlunsplit((scheme, parts.netloc, parts.path, query, ""))


def _timestamp(event: dict) -> datetime | None:
    """ARI's `2026-11-27T19:32:45.548+0000`; None (meaning now) if missing or unreadable."""
    value = event.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _own_id(channel_id: Any) -> str | None:
    """The originated channel's ID for it or its Local partner (`<id>;2`)."""
    if not isinstance(channel_id, str):
        return None
    return channel_id.removesuffix(";2")


class Listener:
    """One ARI WebSocket, followed until `stop()` (or the tests' `until()`)."""

    FOLLOW_ENDED_FOR = 60.0  # seconds a destroyed channel's late events are still applied

    def __init__(
        self,
        *,
        config: AriConfig,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        heartbeat_every: float = 10.0,
        sweep_every: float = 5.0,
        ring_margin: float = 15.0,
        sleep: Callable[[float], None] | None = None,
    ):
        self.config = config
        self.url = events_url(config)
        self.name = urlsplit(config.url).hostname or config.url
        if urlsplit(config.url).port:
            self.name = f"{self.name}:{urlsplit(config.url).port}"
        self.client = AriClient(config)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat_every = heartbeat_every
        self.sweep_every = sweep_every
        # A placed call Asterisk has not reported for longer than the ring timeout and this margin
        # is checked with ARI: the agent's channel is gone by then unless it was answered.
        self.ring_margin = ring_margin
        self.sleep = sleep or self._interruptible_sleep
        self.stopping = threading.Event()
        # The channels followed: open calls, and ended ones for a minute (late, reordered events).
        self.channels: dict[str, float | None] = {}  # channel ID → when it ended (monotonic) or None
        self.stats: Counter[str] = Counter()
        self.delays: list[float] = []
        self.state = ""
        self.state_since = timezone.now()
        self.last_error = ""
        self.last_event_at: datetime | None = None
        self.reconcile_pending = False
        self._until: Callable[[], bool] | None = None

    # The loop

    def stop(self) -> None:
        self.stopping.set()

    def done(self) -> bool:
        return self.stopping.is_set() or (self._until is not None and self._until())

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        self._until = until
        failures = 0
        while not self.done():
            if self.state != ListenerState.DISCONNECTED:  # retries stay "disconnected since …"
                self._set_state(ListenerState.CONNECTING)
            try:
                self.stats["attempts"] += 1
                with connect(
                    self.url,
                    additional_headers={"Authorization": self._basic_auth()},
                    proxy=None,
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    max_size=2**22,
                    max_queue=1024,  # absorbs a burst of a busy PBX while the database is slow
                ) as websocket:
                    failures = 0
                    self.stats["connects"] += 1
                    self._set_state(ListenerState.CONNECTED)
                    self.reconcile()
                    self._listen(websocket)
            except InvalidStatus as error:
                code = error.response.status_code
                hint = " (check ASTERISK_ARI_USERNAME and ASTERISK_ARI_PASSWORD)" if code in (401, 403) else ""
                self._set_state(
                    ListenerState.DISCONNECTED, f"ARI refused the WebSocket: HTTP {code}{hint}", logging.ERROR
                )
            except (OSError, TimeoutError, WebSocketException) as error:
                # ConnectionClosed included: Asterisk restarted, the network dropped, ping timed out.
                self._set_state(ListenerState.DISCONNECTED, f"{type(error).__name__}: {error}")
            except DatabaseError as error:
                connection.close()  # a fresh connection next time; events missed meanwhile are reconciled
                self._set_state(ListenerState.DISCONNECTED, f"database: {type(error).__name__}: {error}", logging.ERROR)
            if self.done():
                break
            delay = self.backoff(failures)
            failures += 1
            self.delays.append(delay)
            logger.info("telephony events: reconnecting in %.1f s", delay)
            self.sleep(delay)
        self._set_state(ListenerState.STOPPED)

    def backoff(self, failures: int) -> float:
        return backoff(failures, initial=self.backoff_initial, maximum=self.backoff_max)

    def _interruptible_sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def _listen(self, websocket) -> None:
        last_beat = last_sweep = time.monotonic()
        while not self.done():
            try:
                message = websocket.recv(timeout=1.0)
            except TimeoutError:
                message = None
            if message is not None:
                self.stats["messages"] += 1
                self.handle(message)
            now = time.monotonic()
            if now - last_sweep >= self.sweep_every:
                self.sweep()
                last_sweep = now
            if now - last_beat >= self.heartbeat_every:
                self.beat()
                last_beat = now

    def _basic_auth(self) -> str:
        token = base64.b64encode(f"{self.config.username}:{self.config.password}".encode()).decode()
        return f"Basic {token}"

    # Events

    def handle(self, message: str | bytes) -> None:
        """One message off the socket. Unknown types and channels cost a dict look-up, no query."""
        try:
            event = json.loads(message)
        except ValueError:
            logger.warning("telephony events: a message that is not JSON was ignored")
            return
        if not isinstance(event, dict) or event.get("type") not in HANDLED_TYPES:
            return
        kind = event["type"]
        at = _timestamp(event)
        if kind == "Dial":
            caller = event.get("caller") if isinstance(event.get("caller"), dict) else {}
            channel_id = _own_id(caller.get("id"))
            outcome = services.client_outcome_for(event.get("dialstatus"))
            if channel_id in self.channels and outcome:
                self._apply(channel_id, "dial", at=at, client_outcome=outcome)
            return
        channel = event.get("channel") if isinstance(event.get("channel"), dict) else {}
        channel_id = channel.get("id")
        if not isinstance(channel_id, str):
            return
        if kind == "ChannelCreated":
            # The call log row is written before the originate, so a channel of ours is known here.
            if channel_id not in self.channels and not channel_id.endswith(";2"):
                if services.call_is_open(channel_id):
                    self.channels[channel_id] = None
            return
        if channel_id not in self.channels:
            return
        if kind == "ChannelStateChange" and channel.get("state") == "Up":
            self._apply(channel_id, "answered", at=at)
        elif kind == "ChannelDestroyed":
            cause = event.get("cause")
            cause_txt = event.get("cause_txt")
            self._apply(
                channel_id,
                "hangup",
                at=at,
                cause=cause if isinstance(cause, int) and 0 <= cause <= 32767 else None,
                cause_txt=cause_txt if isinstance(cause_txt, str) else None,
            )
            self.channels[channel_id] = self.channels[channel_id] or time.monotonic()

    def _apply(self, channel_id: str, event: str, **facts: Any) -> None:
        try:
            log = services.call_event(channel_id=channel_id, event=event, **facts)
        except NotFound:  # deleted with its communication meanwhile
            self.channels.pop(channel_id, None)
            return
        except DATABASE_UNAVAILABLE_ERRORS:
            raise  # reconnect, then reconcile
        except Exception:  # one bad event must not stop the outcomes of every other call
            logger.exception("telephony events: %s of %s could not be applied", event, channel_id)
            return
        self.stats["applied"] += 1
        self.last_event_at = timezone.now()
        logger.debug("telephony events: %s %s → %s", channel_id, event, log.state)

    # Reconciliation

    def reconcile(self) -> None:
        """After (re)connecting: what ARI no longer knows ended while no one listened."""
        calls = services.calls_open()
        self.channels = dict.fromkeys([call.channel_id for call in calls] + services.channels_requested())
        self.reconcile_pending = not self._check(calls)  # ARI's HTTP side failed: again at the next sweep
        self.stats["reconciles"] += 1
        self.beat()

    def sweep(self) -> None:
        """While connected: a call still placed past the ring timeout (and a margin) is checked."""
        if self.reconcile_pending:
            self.reconcile_pending = not self._check(services.calls_open())
        deadline = timezone.now() - timedelta(seconds=self.config.ring_timeout + self.ring_margin)
        self._check(services.calls_open(placed_before=deadline))
        forget_before = time.monotonic() - self.FOLLOW_ENDED_FOR
        for channel_id, ended in list(self.channels.items()):
            if ended is not None and ended < forget_before:
                del self.channels[channel_id]

    def _check(self, calls) -> bool:
        """Ask ARI about each call; False if ARI could not be asked (the rest wait for the next try)."""
        for call in calls:
            try:
                channel = self.client.channel(call.channel_id)
            except TelephonyError as error:
                logger.warning("telephony events: cannot reconcile now (%s); will try again", error.detail)
                return False
            if channel is None:
                self._apply(call.channel_id, "hangup")  # outcome unknown, ended now
                self.channels[call.channel_id] = time.monotonic()
                self.stats["reconciled"] += 1
            else:
                self.channels.setdefault(call.channel_id, None)
                if channel.get("state") == "Up" and call.state == CallState.PLACED:
                    self._apply(call.channel_id, "answered")
        return True

    # Health

    def _set_state(self, state: str, error: str = "", level: int = logging.WARNING) -> None:
        if state == self.state and not error:
            return
        if state != self.state:
            self.state_since = timezone.now()
        self.state = state
        if error:
            self.last_error = error
            logger.log(level, "telephony events: %s from %s: %s", state, self.url, error)
        else:
            logger.info("telephony events: %s (%s)", state, self.url)
        self.beat()

    def beat(self) -> None:
        """The heartbeat row an operator reads (`manage.py telephony_events --status`)."""
        try:
            EventListener.objects.update_or_create(
                name=self.name,
                defaults={
                    "host": socket.gethostname()[:255],
                    "pid": os.getpid(),
                    "state": self.state,
                    "state_since": self.state_since,
                    "beat_at": timezone.now(),
                    "last_event_at": self.last_event_at,
                    "last_error": self.last_error,
                },
            )
        except DatabaseError as error:
            logger.error("telephony events: cannot write the heartbeat: %s", error)
            with suppress(DatabaseError):
                connection.close()
