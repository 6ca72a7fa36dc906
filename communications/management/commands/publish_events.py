"""Relay the change feed to RabbitMQ (docs/EVENTS.md): the push route for the feed's consumers."""

import signal
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from communications.events import Position, pending
from communications.models import EventRelay, RelayState
from communications.relay import Relay

# A heartbeat older than this (the relay writes one every 5 s) means the process is gone or stuck.
STALE_AFTER = timedelta(seconds=60)


class Command(BaseCommand):
    help = (
        "Publish every change event to the RabbitMQ exchange EVENTS_EXCHANGE at EVENTS_BROKER_URL, in feed "
        "order, with publisher confirms. One relay per exchange publishes; another started beside it waits "
        "and takes over. Runs until SIGTERM or SIGINT. --status prints the relays' heartbeats instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status",
            action="store_true",
            help="Print each relay's state and backlog; exit 1 unless one is publishing and beat within 60 s.",
        )

    def handle(self, *args, status: bool = False, **options):
        if status:
            return self.status()
        if not settings.EVENTS_BROKER_URL:
            raise CommandError("EVENTS_BROKER_URL is not set (e.g. amqp://guest:guest@127.0.0.1:5672/).")
        relay = Relay(
            url=settings.EVENTS_BROKER_URL,
            exchange=settings.EVENTS_EXCHANGE,
            batch=settings.EVENTS_RELAY_BATCH,
            poll=settings.EVENTS_RELAY_POLL_SECONDS,
        )

        def stop(signum, frame):
            self.stderr.write(f"publish events: {signal.Signals(signum).name} received, stopping")
            relay.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"publish events: to exchange {relay.exchange} at {relay.target}")
        relay.run()
        self.stderr.write(f"publish events: stopped ({relay.published} published by this process)")

    def status(self) -> None:
        now = timezone.now()
        healthy = False
        rows = list(EventRelay.objects.order_by("name"))
        for row in rows:
            age = (now - row.beat_at).total_seconds()
            fresh = age <= STALE_AFTER.total_seconds()
            healthy |= fresh and row.state == RelayState.PUBLISHING
            count, oldest = pending(Position(row.txid, row.event), cap=100_000, alias="default")
            lag = f", oldest waiting {(now - oldest).total_seconds():.0f} s" if oldest else ""
            self.stdout.write(
                f"{row.name}: {row.state} since {row.state_since.isoformat(timespec='seconds')}, "
                f"heartbeat {age:.0f} s ago{'' if fresh else ' (STALE)'}, pid {row.pid} on {row.host}, "
                f"{row.published} published, {count}{'+' if count >= 100_000 else ''} pending{lag}"
                + (f", last error: {row.last_error}" if row.last_error else "")
            )
        if not rows:
            self.stdout.write("No relay has ever run.")
        if not healthy:
            raise CommandError("No relay is publishing.")
