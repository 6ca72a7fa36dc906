import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from communications import transfer
from communications_project.bulkload import ImportFileError, count_lines, progress_bar


class Command(BaseCommand):
    help = (
        "Import communications from CSV (with a header) or JSONL, keyed by oracle_id: each with its ID "
        "translation and an `import` history row. Bad rows go to the error report, good ones are imported. "
        "Exit status: 0 all imported or unchanged, 1 some rejected, 2 the file is unusable."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from the extension")
        parser.add_argument("--errors", type=Path, help="write rejected rows here (CSV); default: stderr")
        parser.add_argument("--batch-size", type=int, default=transfer.DEFAULT_BATCH_SIZE, help="rows per transaction")
        parser.add_argument("--update-existing", action="store_true", help="rewrite stored rows whose content changed")
        parser.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
        parser.add_argument(
            "--no-events",
            action="store_true",
            help="write no change-feed events (a first migration whose consumers start from an export)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: Path, errors: Path | None, batch_size: int, no_progress: bool, **options):
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be from 1 to 100000", returncode=2)
        try:
            file_format = options["format"] or transfer.guess_format(file)
            if not file.is_file():
                raise ImportFileError(f"No such file: {file}")
            # Read once before anything is written: the progress bar's total, and a file that is
            # not UTF-8 is refused whole instead of half-imported.
            lines = count_lines(file, check_utf8=True)
        except ImportFileError as error:
            raise CommandError(str(error), returncode=2)
        error_out = errors.open("w", newline="", encoding="utf-8") if errors else sys.stderr
        bar = progress_bar(lines - (1 if file_format == "csv" else 0), disable=no_progress)
        started = time.monotonic()
        try:
            counts = transfer.import_file(
                file,
                file_format=file_format,
                report=transfer.ErrorReport(error_out),
                batch_size=batch_size,
                dry_run=options["dry_run"],
                update_existing=options["update_existing"],
                events=not options["no_events"],
                progress=bar.update,
            )
        except ImportFileError as error:
            raise CommandError(str(error), returncode=2)
        finally:
            bar.close()
            if errors:
                error_out.close()
        seconds = time.monotonic() - started
        self.stdout.write(
            f"{'Dry run: nothing was written. ' if options['dry_run'] else ''}"
            f"Rows: {counts.rows}, created: {counts.created}, updated: {counts.updated}, "
            f"unchanged: {counts.unchanged}, rejected: {counts.rejected} "
            f"({seconds:.1f} s, {counts.rows / seconds if seconds else 0:,.0f} rows/s)"
        )
        if counts.rejected:
            sys.exit(1)
