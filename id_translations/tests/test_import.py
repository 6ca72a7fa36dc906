"""manage.py import_id_translations with the sample files in data/."""

import csv
import io
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from id_translations.models import IdTranslation

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def run(name: str, tmp_path: Path, *args: str, batch_size: int = 50_000) -> tuple[str, list[dict]]:
    out = io.StringIO()
    errors = tmp_path / "errors.csv"
    call_command(
        "import_id_translations",
        str(DATA / name),
        "--errors",
        str(errors),
        "--no-progress",
        "--batch-size",
        str(batch_size),
        *args,
        stdout=out,
    )
    if not errors.exists() or errors.stat().st_size == 0:
        return out.getvalue(), []
    with errors.open(newline="") as handle:
        return out.getvalue(), list(csv.DictReader(handle))


def pairs() -> set[tuple[str, int]]:
    return {(str(u), i) for u, i in IdTranslation.objects.values_list("flora_uuid", "oracle_id")}


def test_good_file_is_imported(tmp_path):
    summary, errors = run("good.csv", tmp_path)
    assert "Lines: 3, created: 3, already present: 0, conflicting: 0, malformed: 0" in summary
    assert errors == []
    assert ("0190a1b2-0000-7000-8000-000000000002", 1002) in pairs()


def test_rerunning_a_file_creates_nothing(tmp_path):
    run("good.csv", tmp_path)
    summary, _ = run("good.csv", tmp_path)
    assert "created: 0, already present: 3" in summary
    assert IdTranslation.objects.count() == 3


def test_malformed_lines_are_reported_and_good_ones_imported(tmp_path):
    summary, errors = run("malformed.csv", tmp_path)
    assert "Lines: 8, created: 2, already present: 0, conflicting: 0, malformed: 6" in summary
    assert pairs() == {("0190a1b2-0000-7000-8000-000000000011", 2001), ("0190a1b2-0000-7000-8000-000000000018", 2008)}
    assert [(e["line"], e["reason"]) for e in errors] == [
        ("3", "flora_uuid is not a UUID (8-4-4-4-12 hex digits)"),
        ("4", "oracle_id is not a whole number from 1 to 9223372036854775807"),
        ("5", "expected 2 columns, found 1"),
        ("6", "expected 2 columns, found 3"),
        ("7", "oracle_id is not a whole number from 1 to 9223372036854775807"),
        ("8", "flora_uuid is not a UUID (8-4-4-4-12 hex digits)"),
    ]


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_conflicts_with_stored_pairs_are_reported(tmp_path, batch_size):
    run("good.csv", tmp_path)
    summary, errors = run("conflicting.csv", tmp_path, batch_size=batch_size)
    assert "Lines: 4, created: 1, already present: 1, conflicting: 2, malformed: 0" in summary
    # Line 3 clashes with line 2 of the file (same batch) or with what line 2 matched (stored).
    assert errors[0]["line"] == "3" and errors[0]["reason"] in (
        "conflicts with line 2 of this file",
        "conflicts with the stored pair 0190a1b2-0000-7000-8000-000000000001,1001",
    )
    assert (errors[1]["line"], errors[1]["reason"]) == (
        "4",
        "conflicts with the stored pair 0190a1b2-0000-7000-8000-000000000002,1002",
    )
    assert ("0190a1b2-0000-7000-8000-000000000021", 3001) in pairs()


@pytest.mark.parametrize("batch_size", [1, 2, 10_000])
def test_duplicates_within_the_file_whatever_the_batching(tmp_path, batch_size):
    summary, errors = run("duplicates.csv", tmp_path, batch_size=batch_size)
    assert "Lines: 5, created: 2, already present: 1, conflicting: 2, malformed: 0" in summary
    assert pairs() == {("0190a1b2-0000-7000-8000-000000000031", 4001), ("0190a1b2-0000-7000-8000-000000000032", 4002)}
    assert [e["line"] for e in errors] == ["5", "6"]


def test_dry_run_changes_nothing(tmp_path):
    summary, _ = run("good.csv", tmp_path, "--dry-run")
    assert summary.startswith("Dry run: nothing was written.")
    assert "created: 3" in summary
    assert not IdTranslation.objects.exists()


def test_a_file_without_the_header_is_refused(tmp_path):
    with pytest.raises(CommandError, match="Expected the header flora_uuid,oracle_id"):
        run("bad_header.csv", tmp_path)
    assert not IdTranslation.objects.exists()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_id_translations", str(tmp_path / "nope.csv"))


def test_memory_does_not_grow_with_the_file(tmp_path):
    """Peak memory of importing 20,000 lines stays within a small bound of importing 2,000."""
    import tracemalloc

    from id_translations.importer import ErrorReport, import_file

    def peak(lines: int) -> int:
        path = tmp_path / f"{lines}.csv"
        with path.open("w") as handle:
            handle.write("flora_uuid,oracle_id\n")
            for n in range(1, lines + 1):
                handle.write(f"{uuid.uuid4()},{n + lines * 10}\n")
        tracemalloc.start()
        import_file(path, report=ErrorReport(io.StringIO()), batch_size=1000)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.5, (small, large)
    assert IdTranslation.objects.count() == 22_000


def test_stored_pair_made_by_the_api_counts_as_present(tmp_path):
    IdTranslation.objects.create(flora_uuid=uuid.UUID("0190a1b2-0000-7000-8000-000000000001"), oracle_id=1001)
    summary, _ = run("good.csv", tmp_path)
    assert "created: 2, already present: 1" in summary
