"""Delete change events older than the retention, in short batches (docs/OPERATIONS.md)."""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from communications.events import Position, events_purge
from communications.models import EventRelay


class Command(BaseCommand):
    help = (
        "Delete change events older than EVENTS_RETENTION_DAYS, oldest first, in batches (one short "
        "transaction each). Events a relay has not published yet are kept unless --include-unpublished."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5_000, help="Events per transaction (default 5,000).")
        parser.add_argument(
            "--include-unpublished",
            action="store_true",
            help="Also delete old events no relay has published (a relay long gone, say).",
        )

    def handle(self, *args, batch_size: int, include_unpublished: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        before = timezone.now() - dt.timedelta(days=settings.EVENTS_RETENTION_DAYS)
        keep_after = None
        if not include_unpublished:
            relays = [Position(row.txid, row.event) for row in EventRelay.objects.all()]
            keep_after = min(relays) if relays else None
        deleted = events_purge(before=before, batch_size=batch_size, keep_after=keep_after)
        self.stdout.write(f"Deleted {deleted} events from before {before.isoformat(timespec='seconds')}.")
