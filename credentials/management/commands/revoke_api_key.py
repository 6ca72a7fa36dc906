from django.core.management.base import BaseCommand, CommandError

from communications_project.errors import NotFound
from credentials import services


class Command(BaseCommand):
    help = "Revoke the API key with this prefix (the admin's and create_api_key's `cmk_…`): refused from now on."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix: str, **options):
        try:
            api_key, revoked = services.api_key_revoke(prefix=prefix.rstrip("…").strip())
        except NotFound as error:
            raise CommandError(error.detail) from error
        what = f"API key {api_key.prefix}… of {api_key.user.get_username()} ({api_key.name})"
        self.stdout.write(f"{what}: revoked." if revoked else f"{what} was already revoked.")
