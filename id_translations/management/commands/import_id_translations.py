import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from communications_project.bulkload import progress_bar
from id_translations.importer import ErrorReport, ImportFileError, count_lines, import_file


class Command(BaseCommand):
    help = (
        "Import Flora UUID ⇄ Oracle ID pairs from a CSV file with the header flora_uuid,oracle_id. "
        "Good lines are imported, rejected ones reported; re-running a file creates nothing new."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--errors", type=Path, help="write rejected lines here (CSV); default: stderr")
        parser.add_argument("--batch-size", type=int, default=50_000, help="lines per transaction")
        parser.add_argument("--dry-run", action="store_true", help="check everything, change nothing")
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self, *args, file: Path, errors: Path | None, batch_size: int, dry_run: bool, no_progress: bool, **options
    ):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be from 1 to 100000")
        error_out = errors.open("w", newline="", encoding="utf-8") if errors else sys.stderr
        bar = progress_bar(count_lines(file) - 1, disable=no_progress)
        started = time.monotonic()
        try:
            stats = import_file(
                file, report=ErrorReport(error_out), batch_size=batch_size, dry_run=dry_run, progress=bar.update
            )
        except ImportFileError as error:
            raise CommandError(str(error))
        finally:
            bar.close()
            if errors:
                error_out.close()
        seconds = time.monotonic() - started
        rate = stats.lines / seconds if seconds else 0
        self.stdout.write(
            f"{'Dry run: nothing was written. ' if dry_run else ''}"
            f"Lines: {stats.lines}, created: {stats.created}, already present: {stats.present}, "
            f"conflicting: {stats.conflicting}, malformed: {stats.malformed} "
            f"({seconds:.1f} s, {rate:,.0f} rows/s)"
        )
