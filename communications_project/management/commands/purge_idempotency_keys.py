from django.core.management.base import BaseCommand

from communications_project.idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete Idempotency-Key records past their time to live (run it hourly from cron)."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {purge_expired()} expired idempotency keys.")
