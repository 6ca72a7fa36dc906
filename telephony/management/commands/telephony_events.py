"""Follow Asterisk's ARI events and record every call's outcome: the service's primary outcome path."""

import signal
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from telephony.ari import AriConfig, TelephonyNotConfigured
from telephony.listener import Listener
from telephony.models import EventListener, ListenerState

# A heartbeat older than this (the listener writes one every 10 s) means the process is gone or stuck.
STALE_AFTER = timedelta(seconds=60)


class Command(BaseCommand):
    help = (
        "Hold ARI's WebSocket and move the call log from its events (one process per Asterisk). "
        "Runs until SIGTERM or SIGINT. --status prints the listeners' heartbeats instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status",
            action="store_true",
            help="Print every listener's heartbeat; exit 1 unless one is connected and beat within 60 s.",
        )

    def handle(self, *args, status: bool = False, **options):
        if status:
            return self.status()
        try:
            config = AriConfig.from_settings()
        except TelephonyNotConfigured as error:
            raise CommandError(str(error.detail))
        listener = Listener(config=config)

        def stop(signum, frame):
            self.stderr.write(f"telephony events: {signal.Signals(signum).name} received, stopping")
            listener.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"telephony events: listening to {listener.url}")
        listener.run()
        self.stderr.write("telephony events: stopped")

    def status(self) -> None:
        now = timezone.now()
        healthy = False
        rows = list(EventListener.objects.order_by("name"))
        for row in rows:
            age = (now - row.beat_at).total_seconds()
            fresh = age <= STALE_AFTER.total_seconds()
            healthy |= fresh and row.state == ListenerState.CONNECTED
            last_event = row.last_event_at.isoformat(timespec="seconds") if row.last_event_at else "never"
            self.stdout.write(
                f"{row.name}: {row.state} since {row.state_since.isoformat(timespec='seconds')}, "
                f"heartbeat {age:.0f} s ago{'' if fresh else ' (STALE)'}, pid {row.pid} on {row.host}, "
                f"last event {last_event}" + (f", last error: {row.last_error}" if row.last_error else "")
            )
        if not rows:
            self.stdout.write("No telephony events listener has ever run.")
        if not healthy:
            raise CommandError("No telephony events listener is connected.")
