import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from communications import demo
from communications.models import Communication
from credentials import services as credentials
from credentials.models import ApiKey

DEMO_KEY_NAME = "demo (setup_demo)"


class Command(BaseCommand):
    help = (
        "Make a fresh database usable at once: demo data (if there is none; with this morning's "
        "leads), an administrator with a new password, and a new API key (the previous demo key is "
        "revoked). Prints what to log in with."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--count", type=int, default=300)
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, username: str, count: int, url: str, **options):
        if not Communication.objects.exists():
            demo.load(count)
            demo.load_today(first_oracle_id=count + 1)  # the supervisors' dashboard has a morning to show
        user, _ = get_user_model().objects.get_or_create(username=username)
        password = secrets.token_urlsafe(12)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        # A key is shown once and stored hashed: each run makes a new one and revokes the last.
        for old in ApiKey.objects.filter(user=user, name=DEMO_KEY_NAME, date_revoked__isnull=True):
            credentials.api_key_revoke(prefix=old.prefix)
        _, key = credentials.api_key_create(user=user, name=DEMO_KEY_NAME)
        self.stdout.write(
            f"Communications: {Communication.objects.count()}\n"
            f"Admin:     {url}/admin/\n"
            f"Login:     {username}\n"
            f"Password:  {password}\n"
            f"API token: {key}\n"
            f"Try:       curl -H 'Authorization: Token {key}' {url}/v3/communications\n"
        )
