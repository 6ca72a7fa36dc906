from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from communications.diagram import docs_svg

DEFAULT = Path(settings.BASE_DIR) / "docs" / "state-machine.svg"


class Command(BaseCommand):
    help = "Draw the communication's state machine from the model's transition table into docs/state-machine.svg."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=DEFAULT, help="default: docs/state-machine.svg")

    def handle(self, *args, output: Path, **options):
        output.write_text(docs_svg(), encoding="utf-8")
        self.stderr.write(f"Wrote {output}.")
