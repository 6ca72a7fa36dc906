from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from communications_project.errors import DomainError
from credentials import services


class Command(BaseCommand):
    help = (
        "Make an API key for USER and print it: it is shown this once (the database keeps only its hash). "
        "The key goes to stdout alone, what to know about it to stderr: KEY=$(manage.py create_api_key …)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'CRM front end'")
        parser.add_argument("--expires-in", help="e.g. 90d, 12h, 4w; without it the key never expires")

    def handle(self, *args, username: str, name: str, expires_in: str | None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            expires_at = timezone.now() + services.parse_duration(expires_in) if expires_in else None
            api_key, key = services.api_key_create(user=user, name=name, expires_at=expires_at)
        except DomainError as error:
            raise CommandError(error.detail) from error
        expiry = f"expires {api_key.date_expires:%Y-%m-%d %H:%M %Z}" if api_key.date_expires else "never expires"
        self.stderr.write(f"API key {api_key.prefix}… for {username} ({name}), {expiry}. Shown once:")
        self.stdout.write(key)
