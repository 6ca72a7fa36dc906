import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from communications import demo, transfer
from communications_project.bulkload import ImportFileError


class Command(BaseCommand):
    help = (
        "Write N realistic communications in the import format (CSV or JSONL, from the extension; "
        "'-' for stdout): every active method with valid details, every reachable state. Seeded."
    )

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("file", help="a .csv or .jsonl path, or - for stdout")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from the extension (csv for -)")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same rows")
        parser.add_argument("--first-oracle-id", type=int, default=1, help="oracle_id of the first row")

    def handle(self, *args, count: int, file: str, seed: int, first_oracle_id: int, **options):
        if count < 0:
            raise CommandError("N must not be negative", returncode=2)
        if first_oracle_id < 1:
            raise CommandError("--first-oracle-id must be at least 1", returncode=2)
        try:
            file_format = options["format"] or ("csv" if file == "-" else transfer.guess_format(Path(file)))
        except ImportFileError as error:
            raise CommandError(str(error), returncode=2)
        if file == "-":
            demo.write(sys.stdout, count, file_format=file_format, seed=seed, first_oracle_id=first_oracle_id)
            return
        with open(file, "w", encoding="utf-8", newline="") as out:
            demo.write(out, count, file_format=file_format, seed=seed, first_oracle_id=first_oracle_id)
        self.stderr.write(f"Wrote {count} communications to {file}.")
