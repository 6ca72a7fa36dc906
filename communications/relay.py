"""The relay behind `manage.py publish_events` (docs/EVENTS.md, docs/OPERATIONS.md).

One loop: hold a PostgreSQL advisory lock (one relay per exchange publishes; another waits and
takes over when the first one's session ends), connect to RabbitMQ, then read the feed after the
position saved in `EventRelay` and publish each event to a durable topic exchange, routing key =
its type, persistent, with publisher confirms. The position moves only after the broker has
confirmed, and only on the session that holds the lock: a relay that dies between a confirm and
the save publishes those events again (at least once, the same `message_id`), never skips one.
Reconnects with exponential backoff and jitter; stops cleanly on request; logs a line per change
of state; writes its heartbeat on the row an operator and /metrics read.
"""

import datetime as dt
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress

import pika
import pika.exceptions
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from communications_project.backoff import backoff

from . import events
from .models import EventRelay, RelayState

logger = logging.getLogger("communications.relay")

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


def lock_key(exchange: str) -> int:
    """The advisory lock one relay of `exchange` holds: a stable signed 64-bit number."""
    digest = hashlib.sha256(f"communications.publish_events:{exchange}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def properties(event: events.Event) -> pika.BasicProperties:
    """AMQP properties of an event: persistent, `message_id` = the event's id, and the CloudEvents
    attributes as `cloudEvents:*` headers (the AMQP binding's names) for routing without parsing."""
    envelope = event.envelope()
    headers = {f"cloudEvents:{name}": envelope[name] for name in ("specversion", "id", "source", "type", "subject")}
    headers["cloudEvents:time"] = event.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    headers["cloudEvents:sequence"] = event.position.cursor
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=str(event.event_id),
        type=event.type,
        timestamp=int(event.time.timestamp()),
        app_id="communications",
        headers=headers,
    )


def connection_parameters(url: str) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    if "heartbeat=" not in url:
        parameters.heartbeat = 15  # a dead broker or network is noticed within about 30 s
    if "socket_timeout=" not in url:
        parameters.socket_timeout = 10
    if "blocked_connection_timeout=" not in url:
        parameters.blocked_connection_timeout = 30  # a broker out of disk or memory blocks publishers
    parameters.connection_attempts = 1  # the relay's own loop retries, with backoff
    return parameters


class Relay:
    def __init__(
        self,
        *,
        url: str,
        exchange: str,
        batch: int = 500,
        poll: float = 0.5,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        heartbeat_every: float = 5.0,
        lock_poll: float = 1.0,
        sleep: Callable[[float], None] | None = None,
    ):
        self.url = url
        self.parameters = connection_parameters(url)
        self.target = f"{self.parameters.host}:{self.parameters.port}{self.parameters.virtual_host}"
        self.exchange = exchange
        self.batch = batch
        self.poll = poll
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.heartbeat_every = heartbeat_every
        self.lock_poll = lock_poll
        self.sleep = sleep or self.stopping_wait
        self.stopping = threading.Event()
        self.key = lock_key(exchange)
        self.locked = False
        self.state = ""
        self.state_since = timezone.now()
        self.last_error = ""
        self.position = events.START
        self.published = 0  # by this process
        self._until: Callable[[], bool] | None = None

    # The loop

    def stop(self) -> None:
        self.stopping.set()

    def stopping_wait(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def done(self) -> bool:
        return self.stopping.is_set() or (self._until is not None and self._until())

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        self._until = until
        failures = 0
        try:
            while not self.done():
                try:
                    if not self.locked and not self._acquire_lock():
                        break
                    if self.state != RelayState.DISCONNECTED:  # retries stay "disconnected since …"
                        self._set_state(RelayState.CONNECTING)
                    amqp = pika.BlockingConnection(self.parameters)
                    try:
                        channel = amqp.channel()
                        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
                        channel.confirm_delivery()
                        failures = 0
                        self._set_state(RelayState.PUBLISHING)
                        self._publish(amqp, channel)
                    finally:
                        with suppress(*AMQP_ERRORS):
                            amqp.close()
                except AMQP_ERRORS as error:
                    self._set_state(RelayState.DISCONNECTED, f"RabbitMQ at {self.target}: {_describe(error)}")
                except DatabaseError as error:
                    self._lost_database(error)
                if self.done():
                    break
                delay = self.backoff(failures)
                failures += 1
                logger.info("publish events: reconnecting in %.1f s", delay)
                self.sleep(delay)
        finally:
            self._set_state(RelayState.STOPPED)
            self._release_lock()

    def backoff(self, failures: int) -> float:
        return backoff(failures, initial=self.backoff_initial, maximum=self.backoff_max)

    # One relay at a time

    def _acquire_lock(self) -> bool:
        """Wait for the advisory lock (False: asked to stop meanwhile), then load the saved position."""
        waiting_logged = False
        if connection.vendor != "postgresql":
            # SQLite (the demo) has no advisory locks: one relay per database file, as `make run` starts.
            self.locked = True
            self._load_position()
            return True
        while not self.done():
            with connection.cursor() as cursor:  # a DatabaseError goes to run(): backoff, then again
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                self.locked = bool(cursor.fetchone()[0])
            if self.locked:
                self._load_position()
                return True
            if not waiting_logged:
                logger.info("publish events: another relay publishes to %s; waiting to take over", self.exchange)
                self.state, self.state_since = RelayState.WAITING, timezone.now()
                waiting_logged = True
            self.sleep(self.lock_poll)
        return False

    def _load_position(self) -> None:
        row, _ = EventRelay.objects.get_or_create(
            name=self.exchange,
            defaults={"state": RelayState.CONNECTING, "state_since": timezone.now(), "beat_at": timezone.now()},
        )
        self.position = events.Position(row.txid, row.event)
        logger.info(
            "publish events: holding the lock for exchange %s; publishing after %s", self.exchange, self.position.cursor
        )

    def _release_lock(self) -> None:
        if not self.locked or connection.vendor != "postgresql":
            self.locked = False
            return
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        self.locked = False

    def _lost_database(self, error: DatabaseError) -> None:
        """The session (and with it the lock) may be gone: another relay may publish by now."""
        self.locked = False
        with suppress(DatabaseError):
            connection.close()
        self._set_state(RelayState.DISCONNECTED, f"database: {_describe(error)}", logging.ERROR)

    # Publishing

    def _publish(self, amqp: pika.BlockingConnection, channel) -> None:
        last_beat = time.monotonic()
        while not self.done():
            page = self._next_page()
            if page.events:
                self._publish_page(channel, page.events)
            if time.monotonic() - last_beat >= self.heartbeat_every:
                self.beat()
                last_beat = time.monotonic()
            if not page.has_more:
                # Idle: let pika answer the broker's heartbeats and notice a closed connection.
                amqp.process_data_events(time_limit=self.poll)

    def _next_page(self) -> events.Page:
        try:
            return events.event_page(after=self.position, limit=self.batch, alias="default")
        except events.CursorExpired:
            _, purged = events.horizon("default")
            logger.error(
                "publish events: events after %s were purged before they were published; going on after %s",
                self.position.cursor,
                purged.cursor,
            )
            self._save(purged, 0)
            return events.event_page(after=self.position, limit=self.batch, alias="default")

    def _publish_page(self, channel, page: list[events.Event]) -> None:
        confirmed = 0
        try:
            for event in page:
                # Returns once the broker confirmed (publisher confirms); a nack raises.
                channel.basic_publish(self.exchange, event.type, event.body(), properties(event))
                confirmed += 1
        finally:
            if confirmed:
                self._save(page[confirmed - 1].position, confirmed)

    def _save(self, position: events.Position, count: int) -> None:
        """The position, after the broker's confirms, on the session holding the lock."""
        with transaction.atomic():
            EventRelay.objects.filter(name=self.exchange).update(
                txid=position.txid, event=position.id, published=F("published") + count, beat_at=timezone.now()
            )
        self.position = position
        self.published += count

    # Health

    def _set_state(self, state: str, error: str = "", level: int = logging.WARNING) -> None:
        if state == self.state and not error:
            return
        if state != self.state:
            self.state_since = timezone.now()
        self.state = state
        if error:
            self.last_error = error
            logger.log(level, "publish events: %s: %s", state, error)
        else:
            logger.info("publish events: %s (exchange %s at %s)", state, self.exchange, self.target)
        self.beat()

    def beat(self) -> None:
        """The heartbeat row, written only by the lock holder (a waiting relay would overwrite it)."""
        if not self.locked:
            return
        try:
            EventRelay.objects.filter(name=self.exchange).update(
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                state=self.state,
                state_since=self.state_since,
                beat_at=timezone.now(),
                last_error=self.last_error,
            )
        except DatabaseError as error:
            logger.error("publish events: cannot write the heartbeat: %s", error)
            self.locked = False
            with suppress(DatabaseError):
                connection.close()


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text and text[0] else type(error).__name__


class RelayCollector:
    """/metrics at scrape time: per relay, events pending (counted up to PENDING_CAP), published, the
    age of the oldest event not yet published (lag), and the heartbeat's age. Read from the primary."""

    PENDING_CAP = 100_000

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        pending = GaugeMetricFamily(
            "communications_events_pending",
            f"Events the relay has not published yet (counted up to {self.PENDING_CAP}).",
            labels=["exchange"],
        )
        published = CounterMetricFamily(
            "communications_events_published", "Events published and confirmed by the broker.", labels=["exchange"]
        )
        lag = GaugeMetricFamily(
            "communications_events_lag_seconds",
            "Age of the oldest event not yet published (0 when none waits).",
            labels=["exchange"],
        )
        heartbeat = GaugeMetricFamily(
            "communications_events_relay_heartbeat_age_seconds",
            "Seconds since the relay last wrote its heartbeat.",
            labels=["exchange", "state"],
        )
        try:
            relays = list(EventRelay.objects.using("default").all())
            if settings.EVENTS_BROKER_URL and settings.EVENTS_EXCHANGE not in {row.name for row in relays}:
                # Configured, never ran: everything kept is waiting.
                relays.append(EventRelay(name=settings.EVENTS_EXCHANGE, state="", beat_at=None))
            now = timezone.now()
            for row in relays:
                count, oldest = events.pending(
                    events.Position(row.txid, row.event), cap=self.PENDING_CAP, alias="default"
                )
                pending.add_metric([row.name], count)
                published.add_metric([row.name], row.published)
                lag.add_metric([row.name], (now - oldest).total_seconds() if oldest else 0.0)
                if row.beat_at is not None:
                    heartbeat.add_metric([row.name, row.state], (now - row.beat_at).total_seconds())
        except DatabaseError:
            with suppress(DatabaseError):
                connection.close()
            return
        yield from (pending, published, lag, heartbeat)
