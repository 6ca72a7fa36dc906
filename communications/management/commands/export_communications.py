from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import OuterRef, Subquery
from django.http import QueryDict

from communications import transfer
from communications.filtersets import CommunicationFilterSet
from communications.models import Communication
from communications_project.bulkload import ImportFileError
from id_translations.models import IdTranslation, parse_oracle_id


class Command(BaseCommand):
    help = (
        "Stream communications as CSV or JSONL in exactly the import's format, to a file or stdout, "
        "filtered like the API's list. Only communications with an oracle_id are written (the import "
        "is keyed by it); deleted ones only with --include-deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", default="-", help="a .csv or .jsonl path; - (default) for stdout")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from --output's extension, else csv")
        parser.add_argument("--include-deleted", action="store_true")
        parser.add_argument(
            "--oracle-id", action="append", default=[], help="only these (repeat it, or separate with commas)"
        )
        group = parser.add_argument_group("the list's filters (values as in the API; repeat or separate with commas)")
        for name in CommunicationFilterSet.base_filters:
            group.add_argument(f"--{name.replace('_', '-')}", dest=f"filter_{name}", action="append", default=[])
        parser.add_argument("--chunk-size", type=int, default=2_000, help="rows fetched at a time")

    def handle(self, *args, output: str, include_deleted: bool, oracle_id: list[str], chunk_size: int, **options):
        try:
            file_format = options["format"] or ("csv" if output == "-" else transfer.guess_format(Path(output)))
        except ImportFileError as error:
            raise CommandError(str(error), returncode=2)
        queryset = Communication.objects.all() if include_deleted else Communication.objects.alive()
        data = QueryDict(mutable=True)
        for name in CommunicationFilterSet.base_filters:
            data.setlist(name, options[f"filter_{name}"])
        filterset = CommunicationFilterSet(data=data, queryset=queryset)
        if not filterset.is_valid():
            errors = "; ".join(f"--{key.replace('_', '-')}: {' '.join(msgs)}" for key, msgs in filterset.errors.items())
            raise CommandError(errors, returncode=2)
        queryset = filterset.qs
        wanted = [part.strip() for value in oracle_id for part in value.split(",") if part.strip()]
        if wanted:
            wanted_ids = [parse_oracle_id(value) for value in wanted]
            if None in wanted_ids:
                raise CommandError("--oracle-id takes Oracle IDs: whole numbers from 1", returncode=2)
            translated = IdTranslation.objects.filter(oracle_id__in=wanted_ids)
            queryset = queryset.filter(uuid__in=translated.values("flora_uuid"))
        oracle_ids = IdTranslation.objects.filter(flora_uuid=OuterRef("uuid")).values("oracle_id")[:1]
        rows = (
            queryset.annotate(oracle_id=Subquery(oracle_ids))
            .order_by("date_created", "uuid")
            .values("oracle_id", *transfer.CONTENT)
            .iterator(chunk_size=chunk_size)
        )
        out = self.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
        written = untranslated = 0
        try:
            writer = transfer.Writer(out, file_format)
            for row in rows:
                if row["oracle_id"] is None:
                    untranslated += 1
                    continue
                row["method"] = row.pop("method_id")
                writer.write(row)
                written += 1
        finally:
            if out is not self.stdout:
                out.close()
        self.stderr.write(f"Exported {written} communications.")
        if untranslated:
            self.stderr.write(f"Not exported: {untranslated} without an oracle_id (the import is keyed by it).")
