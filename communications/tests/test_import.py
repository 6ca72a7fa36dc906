"""manage.py import_communications with the sample files in data/."""

import csv
import io
import json
import logging
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from communications import demo, transfer
from communications.models import Communication, CommunicationEvent, CommunicationHistory
from communications.transfer import loader
from communications_project import bulkload
from id_translations.models import IdTranslation

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def run(path: Path | str, tmp_path: Path, *args: str, batch_size: int = 20_000) -> tuple[int, str, list[dict]]:
    """(exit status, summary, error report rows)."""
    out = io.StringIO()
    errors = tmp_path / "errors.csv"
    path = DATA / path if isinstance(path, str) else path
    status = 0
    try:
        call_command(
            "import_communications",
            str(path),
            "--errors",
            str(errors),
            "--no-progress",
            "--batch-size",
            str(batch_size),
            *args,
            stdout=out,
        )
    except SystemExit as exit:
        status = exit.code
    report = []
    if errors.exists() and errors.stat().st_size:
        with errors.open(newline="") as handle:
            report = list(csv.DictReader(handle))
    return status, out.getvalue(), report


def by_oracle_id() -> dict[int, Communication]:
    pairs = dict(IdTranslation.objects.values_list("flora_uuid", "oracle_id"))
    return {pairs[c.uuid]: c for c in Communication.objects.all()}


def test_a_good_file_creates_communications_with_translations_and_history(tmp_path):
    status, summary, report = run("good.csv", tmp_path)
    assert (status, report) == (0, [])
    assert "Rows: 5, created: 5, updated: 0, unchanged: 0, rejected: 0" in summary
    stored = by_oracle_id()
    assert sorted(stored) == [101, 102, 103, 104, 105]
    done = stored[101]
    assert done.uuid.version == 7
    assert (done.method_id, done.kind, done.status, done.version) == ("call", "actual", "done", 1)
    assert done.date_created.isoformat() == "2024-03-01T07:00:00+00:00"  # from the file, in UTC
    assert done.date_finish.isoformat() == "2024-03-01T07:05:00+00:00"
    assert done.details == {"phone": "+79161234567"}
    cancelled = stored[105]
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", 'Клиент перенёс, "позже"\nсм. комментарий')
    assert stored[104].fail_reason == "no_answer"
    history = list(CommunicationHistory.objects.values_list("communication_id", "source", "action", "status_to"))
    assert sorted(history) == sorted((c.uuid, "import", "create", c.status) for c in stored.values())


def test_jsonl_gives_the_same_communications_as_csv(tmp_path):
    fields = [name for name in transfer.CONTENT]
    run("good.csv", tmp_path)
    from_csv = {key: [getattr(c, name) for name in fields] for key, c in by_oracle_id().items()}
    Communication.objects.all().delete()
    IdTranslation.objects.all().delete()
    status, summary, report = run("good.jsonl", tmp_path)
    assert (status, report) == (0, [])
    assert "created: 5" in summary
    from_jsonl = {key: [getattr(c, name) for name in fields] for key, c in by_oracle_id().items()}
    assert from_jsonl == from_csv


# Line of rules.csv -> (column, code): one bad row per rule, each between two good rows.
RULES = {
    3: ("oracle_id", "required"),
    5: ("oracle_id", "invalid"),
    7: ("method", "invalid_choice"),
    9: ("method", "method_inactive"),
    11: ("kind", "invalid_choice"),
    13: ("direction", "invalid_choice"),
    15: ("status", "invalid_choice"),
    17: ("status", "status_not_reachable"),  # actual and cancelled
    19: ("date_finish", "required"),  # done without a finish
    21: ("date_finish", "not_done"),  # in work with a finish
    23: ("date_planned_start", "required"),  # planned without one
    25: ("date_planned_finish", "invalid"),  # planned finish before planned start
    27: ("date_planned_start", "not_planned"),  # actual with a planned date
    29: ("date_finish", "before_start"),
    31: ("date_start", "not_started"),  # planned, created, but started
    33: ("date_start", "required"),  # planned, in work, never started
    35: ("fail_reason", "invalid_choice"),  # failed without a reason
    37: ("fail_reason", "not_failed"),
    39: ("cancel_reason", "not_cancelled"),
    41: ("date_created", "naive_datetime"),
    43: ("date_start", "invalid"),
    45: ("date_start", "future"),
    47: ("date_created", "out_of_range"),
    49: ("client_uuid", "invalid"),
    51: ("client_uuid", "required"),
    53: ("subject", "max_length"),
    55: ("details.phone", "required"),
    57: ("details.fax", "unknown_key"),
    59: ("details", "invalid_json"),
    61: ("details.phone", "invalid_phone"),
    63: ("date_created", "required"),
    65: ("", "column_count"),
}


def test_each_rule_rejects_its_row_and_the_good_rows_around_it_are_imported(tmp_path):
    status, summary, report = run("rules.csv", tmp_path)
    assert status == 1
    assert "Rows: 65, created: 33, updated: 0, unchanged: 0, rejected: 32" in summary
    assert {int(row["line"]): (row["column"], row["code"]) for row in report} == RULES
    assert len(report) == len(RULES)  # one problem each: every row breaks exactly one rule
    first = report[0]
    assert first["message"] == "Required." and first["raw"].startswith(",call,actual,outbound,done,")
    assert report[1]["oracle_id"] == "" and report[2]["oracle_id"] == "203"
    assert Communication.objects.count() == IdTranslation.objects.count() == 33
    assert CommunicationHistory.objects.count() == 33
    assert set(IdTranslation.objects.values_list("oracle_id", flat=True)) == {*range(300, 332), 398}


@pytest.mark.parametrize("oracle_id", ["²", "١٢", "12x"])
def test_an_oracle_id_of_other_digits_is_rejected_not_a_crash(tmp_path, oracle_id):
    good, other = (DATA / "good.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    other = json.loads(other)
    other["oracle_id"] = oracle_id
    path = tmp_path / "digits.jsonl"
    path.write_text(good + "\n" + json.dumps(other, ensure_ascii=False) + "\n", encoding="utf-8")
    status, summary, report = run(path, tmp_path)
    assert status == 1
    assert [(row["line"], row["column"], row["code"]) for row in report] == [("2", "oracle_id", "invalid")]
    assert list(IdTranslation.objects.values_list("oracle_id", flat=True)) == [101]


def _violating_rows() -> dict[str, dict]:
    """For each CHECK constraint of the table, a row of the file that would break it."""
    good = {
        "oracle_id": "1",
        "method": "visit",
        "kind": "actual",
        "direction": "inbound",
        "status": "in_work",
        "client_uuid": str(uuid.uuid4()),
        "date_start": "2024-01-01T10:00:00+00:00",
        "date_created": "2024-01-01T10:00:00+00:00",
    }
    planned = {
        **good,
        "kind": "planned",
        "status": "created",
        "date_start": "",
        "date_planned_start": good["date_start"],
    }
    return {
        "comm_date_finish_only_when_done": {**good, "date_finish": "2024-01-01T11:00:00+00:00"},
        "comm_done_has_date_finish": {**good, "status": "done"},
        "comm_only_planned_cancelled": {**good, "status": "cancelled"},
        "comm_planned_finish_after_start": {**planned, "date_planned_finish": "2023-12-31T10:00:00+00:00"},
    }


def test_validation_covers_every_check_constraint_of_the_table():
    """Each row crafted against a constraint is refused by the rules with a clear code, and the
    same values written without the rules are refused by that very constraint."""
    rows = _violating_rows()
    constraints = {c.name for c in Communication._meta.constraints}
    assert set(rows) == constraints, "a new CHECK constraint needs a row here and a rule in the importer"
    rules = transfer.Rules()
    for name, row in rows.items():
        _, content, problems = rules.clean(row)
        assert content is None and problems, name
        assert all(code and message for _column, code, message in problems), name
        fields = {
            "method_id": row["method"],
            "kind": row["kind"],
            "direction": row["direction"],
            "status": row["status"],
            "client_uuid": row["client_uuid"],
            "date_created": row["date_created"],
            "date_updated": row["date_created"],
            **{key: row[key] or None for key in row if key.startswith("date_") and key != "date_created"},
        }
        with pytest.raises(IntegrityError, match=name), transaction.atomic():
            Communication.objects.create(**fields)


def test_status_per_kind_comes_from_the_state_machine():
    assert transfer.reachable_statuses("actual") == ["in_work", "done", "failed"]
    assert sorted(transfer.reachable_statuses("planned")) == ["cancelled", "created", "done", "failed", "in_work"]


def test_rerunning_a_file_creates_nothing_and_reports_the_rows_unchanged(tmp_path):
    run("good.csv", tmp_path)
    before = {c.uuid: c.version for c in Communication.objects.all()}
    status, summary, report = run("good.csv", tmp_path)
    assert (status, report) == (0, [])
    assert "Rows: 5, created: 0, updated: 0, unchanged: 5, rejected: 0" in summary
    assert {c.uuid: c.version for c in Communication.objects.all()} == before
    assert CommunicationHistory.objects.count() == IdTranslation.objects.count() == 5


def test_a_changed_row_is_reported_and_left_alone_without_update_existing(tmp_path):
    run("good.csv", tmp_path)
    status, summary, report = run("changed.csv", tmp_path)
    assert status == 1
    assert "created: 0, updated: 0, unchanged: 3, rejected: 2" in summary
    assert [(row["oracle_id"], row["column"], row["code"]) for row in report] == [
        ("101", "subject", "changed"),
        ("104", "status,date_finish,fail_reason", "changed"),
    ]
    assert by_oracle_id()[101].subject == "Тест-драйв"


def test_update_existing_rewrites_changed_rows_with_history_and_keeps_the_uuid(tmp_path):
    run("good.csv", tmp_path)
    uuids = {key: c.uuid for key, c in by_oracle_id().items()}
    status, summary, report = run("changed.csv", tmp_path, "--update-existing")
    assert (status, report) == (0, [])
    assert "Rows: 5, created: 0, updated: 2, unchanged: 3, rejected: 0" in summary
    stored = by_oracle_id()
    assert {key: c.uuid for key, c in stored.items()} == uuids
    assert (stored[101].subject, stored[101].version) == ("Тест-драйв (перенесён)", 2)
    assert (stored[104].status, stored[104].fail_reason, stored[104].version) == ("done", "", 2)
    assert stored[102].version == 1
    update = CommunicationHistory.objects.get(communication=stored[104], action="update")
    assert (update.source, update.status_from, update.status_to) == ("import", "failed", "done")
    assert update.changes == {
        "status": ["failed", "done"],
        "date_finish": [None, "2024-03-01T07:07:00Z"],
        "fail_reason": ["no_answer", ""],
    }
    assert CommunicationHistory.objects.filter(communication=stored[101]).count() == 2


@pytest.mark.parametrize("batch_size", [1, 2, 20_000])
def test_duplicates_in_a_file_the_first_wins_whatever_the_batching(tmp_path, batch_size):
    status, summary, report = run("duplicates.csv", tmp_path, batch_size=batch_size)
    assert status == 1
    assert "Rows: 5, created: 3, updated: 0, unchanged: 0, rejected: 2" in summary
    assert [(row["line"], row["oracle_id"], row["code"]) for row in report] == [
        ("4", "501", "duplicate"),
        ("6", "502", "duplicate"),
    ]
    assert by_oracle_id()[501].subject == "Тест-драйв"


def test_a_translation_imported_before_its_communication_gives_it_its_uuid(tmp_path):
    known = uuid.UUID("0190a1b2-0000-7000-8000-0000000000aa")
    IdTranslation.objects.create(flora_uuid=known, oracle_id=102)
    status, summary, _ = run("good.csv", tmp_path)
    assert status == 0 and "created: 5" in summary
    assert by_oracle_id()[102].uuid == known
    assert IdTranslation.objects.count() == 5


def test_dry_run_writes_nothing_and_reports_the_same(tmp_path):
    status, summary, report = run("rules.csv", tmp_path, "--dry-run")
    assert status == 1
    assert summary.startswith("Dry run: nothing was written. Rows: 65, created: 33")
    assert {int(row["line"]): (row["column"], row["code"]) for row in report} == RULES
    assert not Communication.objects.exists()
    assert not IdTranslation.objects.exists()
    assert not CommunicationHistory.objects.exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing_column.csv", "Missing column(s): date_created."),
        ("unknown_column.csv", "Unknown column(s) 'colour'"),
        ("not_utf8.csv", "The file is not UTF-8 (byte"),
        ("not_jsonl.jsonl", "Line 1 is not a JSON object"),
        ("good.txt", "Cannot tell the format from 'good.txt'"),
        ("nothing_here.csv", "No such file"),
    ],
)
def test_an_unusable_file_exits_2_and_writes_nothing(tmp_path, name, message):
    with pytest.raises(CommandError) as error:
        run(name, tmp_path)
    assert error.value.returncode == 2
    assert message in str(error.value)
    assert not Communication.objects.exists()
    assert not IdTranslation.objects.exists()


def test_a_batch_failing_in_the_middle_leaves_no_part_of_it(tmp_path, monkeypatch):
    """The second batch dies after its communications and translations were COPYed, while its
    history is written: none of that batch stays; a re-run completes the file."""
    calls = []
    original = bulkload.copy

    def failing(cursor, table, columns, chunks):
        if table == CommunicationHistory._meta.db_table:
            calls.append(table)
            if len(calls) == 2:
                raise RuntimeError("the connection dropped")
        original(cursor, table, columns, chunks)

    monkeypatch.setattr(bulkload, "copy", failing)
    with pytest.raises(RuntimeError, match="the connection dropped"):
        run("good.csv", tmp_path, batch_size=2)
    assert sorted(by_oracle_id()) == [101, 102]
    assert IdTranslation.objects.count() == CommunicationHistory.objects.count() == 2
    monkeypatch.undo()
    status, summary, _ = run("good.csv", tmp_path, batch_size=2)
    assert status == 0 and "created: 3, updated: 0, unchanged: 2" in summary
    assert sorted(by_oracle_id()) == [101, 102, 103, 104, 105]


def test_one_log_line_per_batch_with_counts(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="communications.import"):
        run("good.csv", tmp_path, batch_size=2)
    batches = [r for r in caplog.records if r.name == "communications.import" and hasattr(r, "batch")]
    assert [(r.batch, r.rows, r.rows_created) for r in batches] == [(1, 2, 2), (2, 2, 2), (3, 1, 1)]
    assert all(r.elapsed_ms >= 0 for r in batches)


def test_export_then_import_into_an_empty_database_gives_the_same_communications(tmp_path):
    demo.load(300, seed=3, first_oracle_id=1_000)
    run("good.csv", tmp_path)
    deleted = Communication.objects.order_by("uuid").first()
    Communication.objects.filter(uuid=deleted.uuid).update(date_deleted=deleted.date_created)
    fields = ["oracle_id", *transfer.CONTENT]

    def content() -> dict:
        pairs = dict(IdTranslation.objects.values_list("flora_uuid", "oracle_id"))
        return {pairs[row["uuid"]]: row for row in Communication.objects.values("uuid", *transfer.CONTENT)}

    before = content()
    for file_format in ("csv", "jsonl"):
        exported = tmp_path / f"export.{file_format}"
        call_command("export_communications", "--include-deleted", "--output", str(exported), stderr=io.StringIO())
        Communication.objects.all().delete()
        IdTranslation.objects.all().delete()
        status, summary, report = run(exported, tmp_path)
        assert (status, report) == (0, []), report[:3]
        assert "created: 305" in summary
        after = content()
        assert {key: {f: row[f] for f in fields[1:]} for key, row in after.items()} == {
            key: {f: row[f] for f in fields[1:]} for key, row in before.items()
        }


def test_export_filters_like_the_list_and_leaves_deleted_out(tmp_path):
    run("good.csv", tmp_path)
    Communication.objects.filter(uuid=by_oracle_id()[103].uuid).update(date_deleted="2024-03-02T00:00:00Z")
    out = io.StringIO()
    call_command("export_communications", "--format", "jsonl", "--kind", "actual", stdout=out, stderr=io.StringIO())
    assert sorted(json.loads(line)["oracle_id"] for line in out.getvalue().splitlines()) == [101, 104]
    out = io.StringIO()
    call_command("export_communications", "--oracle-id", "102,105", "--oracle-id", "101", stdout=out)
    assert [row["oracle_id"] for row in csv.DictReader(io.StringIO(out.getvalue()))] == ["101", "102", "105"]
    with pytest.raises(CommandError, match="--status: Unknown value 'lost'"):
        call_command("export_communications", "--status", "lost", stdout=io.StringIO())


def test_generated_rows_are_all_valid_and_seeded(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.jsonl"
    call_command("generate_communications", "400", str(first), "--seed", "5", stderr=io.StringIO())
    call_command("generate_communications", "400", str(second), "--seed", "5", stderr=io.StringIO())
    with first.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["method"] for row in rows} == {
        "call",
        "visit",
        "sms",
        "site_request",
        "email",
        "mobile_app_request",
        "messenger",
    }
    assert len({(row["kind"], row["status"]) for row in rows}) == 8
    jsonl = [json.loads(line) for line in second.read_text().splitlines()]
    assert [str(row["oracle_id"]) for row in jsonl] == [row["oracle_id"] for row in rows]
    status, summary, report = run(first, tmp_path)
    assert (status, report[:3]) == (0, []) and "created: 400" in summary
    status, summary, report = run(second, tmp_path)
    assert (status, report) == (0, []) and "unchanged: 400" in summary


def test_memory_does_not_grow_with_the_file(tmp_path):
    """Peak memory of importing 6,000 rows stays within a small bound of importing 1,500."""
    import tracemalloc

    def peak(count: int, first_oracle_id: int) -> int:
        path = tmp_path / f"{count}.csv"
        call_command(
            "generate_communications",
            str(count),
            str(path),
            "--first-oracle-id",
            str(first_oracle_id),
            stderr=io.StringIO(),
        )
        tracemalloc.start()
        transfer.import_file(path, report=transfer.ErrorReport(io.StringIO()), batch_size=500)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1_500, 1), peak(6_000, 10_000)
    assert large < small * 1.5, (small, large)
    assert Communication.objects.count() == 7_500


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_statistics_are_fresh_and_the_list_uses_its_index_right_after_an_import(tmp_path):
    path = tmp_path / "many.csv"
    call_command("generate_communications", "3000", str(path), stderr=io.StringIO())
    table = Communication._meta.db_table
    run(path, tmp_path)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT c.reltuples, s.last_analyze, s.last_autoanalyze FROM pg_class c "
            "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = %s",
            [table],
        )
        reltuples, last_analyze, last_autoanalyze = cursor.fetchone()
        assert reltuples == 3000  # what this import left (earlier tests left other counts)
        assert last_analyze is not None or last_autoanalyze is not None
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname IN ('status', 'client_uuid')", [table]
        )
        assert cursor.fetchone()[0] == 2
    from communications import selectors

    client = Communication.objects.values_list("client_uuid", flat=True).first()
    plans = {
        "status": selectors.communication_queryset().filter(status__in=["cancelled"]),
        "client": selectors.communication_queryset().filter(client_uuid__in=[client]),
    }
    for name, queryset in plans.items():
        plan = queryset.order_by("-date_created", "-uuid")[:51].explain()
        assert "Index" in plan and f"Seq Scan on {table}" not in plan, (name, plan)


def test_an_import_deletes_but_never_restores(tmp_path):
    run("good.csv", tmp_path)
    deleted = by_oracle_id()[101]
    Communication.objects.filter(uuid=deleted.uuid).update(date_deleted="2024-04-01T00:00:00Z")
    status, summary, _ = run("good.csv", tmp_path, "--update-existing")
    assert status == 0 and "unchanged: 5" in summary
    assert by_oracle_id()[101].date_deleted is not None
    rows = (DATA / "good.csv").read_text().splitlines()
    rows[1] = rows[1] + "2024-05-01T00:00:00+00:00"  # the last column, date_deleted
    (tmp_path / "deleting.csv").write_text("\n".join(rows) + "\n")
    status, summary, _ = run(tmp_path / "deleting.csv", tmp_path, "--update-existing")
    assert status == 0 and "updated: 1, unchanged: 4" in summary
    assert by_oracle_id()[101].date_deleted.isoformat() == "2024-05-01T00:00:00+00:00"


@pytest.mark.django_db(databases=[])
def test_sqlite_applies_the_same_rules_with_bulk_create(tmp_path):
    """The demo runs on SQLite: same rules and counts, written with the ORM instead of COPY."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )

    assert manage("migrate", "-v0").returncode == 0
    first = manage("import_communications", str(DATA / "rules.csv"), "--no-progress", "--errors", os.devnull)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "Rows: 65, created: 33, updated: 0, unchanged: 0, rejected: 32" in first.stdout
    again = manage("import_communications", str(DATA / "rules.csv"), "--no-progress", "--errors", os.devnull)
    assert "Rows: 65, created: 0, updated: 0, unchanged: 33, rejected: 32" in again.stdout
    assert manage("import_communications", str(DATA / "good.csv"), "--no-progress").returncode == 0
    updated = manage("import_communications", str(DATA / "changed.csv"), "--no-progress", "--update-existing")
    assert "Rows: 5, created: 0, updated: 2, unchanged: 3, rejected: 0" in updated.stdout, updated.stderr[-2000:]


def test_jsonl_rows_are_checked_for_types_too(tmp_path):
    status, summary, report = run("rules.jsonl", tmp_path)
    assert status == 1
    assert "Rows: 9, created: 2, updated: 0, unchanged: 0, rejected: 7" in summary
    assert [(row["line"], row["column"], row["code"]) for row in report] == [
        ("2", "colour", "unknown_field"),
        ("3", "subject", "invalid"),
        ("4", "comment", "null_characters_not_allowed"),
        ("5", "oracle_id", "invalid"),
        ("6", "details", "invalid"),
        ("7", "", "invalid_json"),
        ("9", "", "invalid_json"),
    ]
    assert sorted(IdTranslation.objects.values_list("oracle_id", flat=True)) == [601, 610]


def test_update_existing_never_overwrites_what_was_changed_in_the_service(tmp_path):
    from communications import services

    run("good.csv", tmp_path)
    edited = by_oracle_id()[101]
    services.communication_delete(uuid=edited.uuid, actor=None, source="admin")
    status, summary, report = run("changed.csv", tmp_path, "--update-existing")
    assert status == 1
    assert "created: 0, updated: 1, unchanged: 3, rejected: 1" in summary
    assert [(row["oracle_id"], row["column"], row["code"]) for row in report] == [
        ("101", "subject", "edited_in_service")
    ]
    assert by_oracle_id()[101].subject == "Тест-драйв"
    assert by_oracle_id()[101].date_deleted is not None
    assert by_oracle_id()[104].status == "done"


def test_an_oracle_id_of_thousands_of_digits_is_rejected_not_a_crash(tmp_path):
    """int() refuses more than 4,300 digits: the row is invalid, the file goes on."""
    good, other = (DATA / "good.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    other = json.loads(other)
    other["oracle_id"] = "1" * 5_000
    path = tmp_path / "long.jsonl"
    path.write_text(good + "\n" + json.dumps(other, ensure_ascii=False) + "\n", encoding="utf-8")
    status, summary, report = run(path, tmp_path)
    assert status == 1 and "created: 1" in summary
    assert [(row["line"], row["column"], row["code"]) for row in report] == [("2", "oracle_id", "invalid")]


def test_other_spellings_of_a_row_give_the_same_communication():
    """The rules take a value in its usual form as it is and send any other to the rule's own
    cleaning: both ways must end in the same content (and details as JSON for the same jsonb)."""
    row = {
        "oracle_id": "101",
        "method": "call",
        "kind": "actual",
        "direction": "outbound",
        "status": "done",
        "client_uuid": "0190a1b2-0000-4000-8000-00000000c001",
        "employee_uuid": "0190a1b2-0000-4000-8000-00000000e001",
        "subject": "Тест-драйв",
        "date_start": "2024-03-01T10:00:00+03:00",
        "date_finish": "2024-03-01T10:05:00+03:00",
        "details": '{"phone": "+79161234567", "duration_sec": 65}',
        "date_created": "2024-03-01T10:00:00+03:00",
    }
    rules = transfer.Rules()
    oracle_id, content, problems, details_json = rules.check(row)
    assert (oracle_id, problems) == (101, []) and content is not None
    assert details_json == row["details"]  # the file's own text: it says just the cleaned details
    variants = {
        "oracle_id": ["0101", " 101 ", 101],
        "method": [" call", "call\t"],
        "kind": [" actual "],
        "direction": ["outbound\n"],
        "status": [" done"],
        "client_uuid": [
            "0190A1B2-0000-4000-8000-00000000C001",
            " 0190a1b2-0000-4000-8000-00000000c001",
            "0190a1b2000040008000 00000000c001".replace(" ", ""),
            "{0190a1b2-0000-4000-8000-00000000c001}",
            "urn:uuid:0190a1b2-0000-4000-8000-00000000c001",
        ],
        "date_start": [" 2024-03-01T10:00:00+03:00", "2024-03-01T07:00:00Z", "2024-03-01T07:00:00.000+00:00"],
        "date_created": ["2024-03-01 07:00:00+00:00", "2024-03-01T10:00:00+03:00 "],
        "details": [
            '{ "duration_sec" : 65,\n "phone" : "+79161234567" }',
            '{"phone": "+79161234567", "duration_sec": 65, "call_id": null}',
            '{"phone": "+79161234567", "duration_sec": 65, "phone": "+79161234567"}',
        ],
    }
    for column, spellings in variants.items():
        for spelling in spellings:
            again = rules.check({**row, column: spelling})
            assert again[:3] == (101, content, []), (column, spelling, again[2])
            assert json.loads(again[3]) == content[10], (column, spelling)
    for column, spelling in [("subject", None), ("employee_uuid", ""), ("employee_uuid", None)]:
        expected = list(content)
        expected[transfer.CONTENT.index(column)] = None if column == "employee_uuid" else ""
        assert rules.check({**row, column: spelling})[1] == tuple(expected), (column, spelling)


def test_details_values_are_checked_as_sent_as_in_the_api():
    """The API's validators read a value as it came (issue 20: the schema's patterns say so); a
    padded phone is refused by the import as by POST /v2/communications, not trimmed."""
    row = {
        "oracle_id": "101",
        "method": "call",
        "kind": "actual",
        "direction": "outbound",
        "status": "in_work",
        "client_uuid": "0190a1b2-0000-4000-8000-00000000c001",
        "date_start": "2024-03-01T10:00:00+03:00",
        "details": '{"phone": " +79161234567 "}',
        "date_created": "2024-03-01T10:00:00+03:00",
    }
    _, content, problems, _ = transfer.Rules().check(row)
    assert content is None
    assert [(column, code) for column, code, _ in problems] == [("details.phone", "invalid_phone")]


def test_details_are_stored_as_the_rules_cleaned_them(tmp_path):
    rows = (DATA / "good.csv").read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].replace('"{""phone"": ""+79161234567""}"', '"{ ""phone"" :  ""+79161234567"" }"')
    rows[3] = rows[3].replace(
        '"{""email"": ""a@example.ru""}"', '"{""email"": ""a@example.ru"", ""email"": ""b@example.ru""}"'
    )
    path = tmp_path / "spaced.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    status, _, report = run(path, tmp_path)
    assert (status, report) == (0, [])
    stored = by_oracle_id()
    assert stored[101].details == {"phone": "+79161234567"}
    assert stored[103].details == {"email": "b@example.ru"}  # the last of a repeated key, as JSON reads it


def _secondary_indexes(*models) -> set[str]:
    """The non-unique indexes the communications, their history and events have now (catalog)."""
    models = models or (Communication, CommunicationHistory, CommunicationEvent)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique",
            [[model._meta.db_table for model in models]],
        )
        return {name for (name,) in cursor.fetchall()}


def test_the_importer_knows_every_secondary_index_the_migrations_made():
    """What a load into empty tables drops and builds is every non-unique index of the three tables."""
    known = set(loader.Loader(transfer.ErrorReport(io.StringIO())).indexes.statements)
    assert known == _secondary_indexes()
    assert {"comm_client_list_idx", "comm_details_phone_idx", "comm_history_idx", "comm_event_subject_idx"} <= known


def test_a_large_load_into_empty_tables_builds_the_secondary_indexes_after_it(tmp_path, monkeypatch):
    every = _secondary_indexes()
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 5)  # good.csv counts as large
    dropped = []
    original = bulkload.copy

    def copy(cursor, table, columns, chunks):
        dropped.append(every - _secondary_indexes())
        original(cursor, table, columns, chunks)

    monkeypatch.setattr(bulkload, "copy", copy)
    status, summary, report = run("good.csv", tmp_path, batch_size=2)
    assert (status, report) == (0, [])
    assert "Rows: 5, created: 5" in summary
    assert f"Secondary indexes: {len(every)} built after the load (" in summary
    assert "dropped for the load into empty tables." in summary
    assert dropped and all(names == every for names in dropped)  # away while the rows went in
    assert _secondary_indexes() == every
    assert sorted(by_oracle_id()) == [101, 102, 103, 104, 105]
    assert CommunicationHistory.objects.count() == IdTranslation.objects.count() == 5


def test_a_small_load_a_filled_table_and_a_dry_run_keep_the_indexes(tmp_path, monkeypatch):
    every = _secondary_indexes()
    status, summary, _ = run("good.csv", tmp_path)  # 5 rows: below DEFER_INDEXES_FROM
    assert status == 0 and "Secondary indexes" not in summary
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 1)
    status, summary, _ = run("duplicates.csv", tmp_path)  # the table is not empty now
    assert "created: 3" in summary and "Secondary indexes" not in summary
    Communication.objects.all().delete()
    IdTranslation.objects.all().delete()
    status, summary, _ = run("good.csv", tmp_path, "--dry-run")
    assert "created: 5" in summary and "Secondary indexes" not in summary
    assert _secondary_indexes() == every


def test_an_interrupted_load_leaves_the_indexes_to_the_next_one(tmp_path, monkeypatch, caplog):
    every = _secondary_indexes()
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 5)
    calls = []
    original = bulkload.copy

    def failing(cursor, table, columns, chunks):
        if table == CommunicationHistory._meta.db_table:
            calls.append(table)
            if len(calls) == 2:
                raise RuntimeError("the connection dropped")
        original(cursor, table, columns, chunks)

    monkeypatch.setattr(bulkload, "copy", failing)
    with pytest.raises(RuntimeError, match="the connection dropped"), caplog.at_level(logging.WARNING):
        run("good.csv", tmp_path, batch_size=2)
    assert _secondary_indexes() == set()
    assert "the next import (the same command again) builds them" in caplog.text
    monkeypatch.setattr(bulkload, "copy", original)
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 1_000_000)
    status, summary, _ = run("good.csv", tmp_path, batch_size=2)
    assert status == 0 and "created: 3, updated: 0, unchanged: 2" in summary
    assert f"Secondary indexes: {len(every)} built after the load (" in summary
    assert "missing after an interrupted load." in summary
    assert _secondary_indexes() == every


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_after_a_load_that_built_its_indexes_the_list_uses_them(tmp_path, monkeypatch):
    every = _secondary_indexes()
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 1_000)
    path = tmp_path / "many.csv"
    call_command("generate_communications", "3000", str(path), stderr=io.StringIO())
    status, summary, _ = run(path, tmp_path)
    assert status == 0 and f"Secondary indexes: {len(every)} built after the load" in summary
    assert _secondary_indexes() == every

    from django.db.models.fields.json import KT

    from communications import selectors

    table = Communication._meta.db_table
    client = Communication.objects.values_list("client_uuid", flat=True).first()
    plans = {
        "status": selectors.communication_queryset().filter(status__in=["cancelled"]),
        "client": selectors.communication_queryset().filter(client_uuid__in=[client]),
        "phone": Communication.objects.annotate(phone=KT("details__phone")).filter(phone="+79161234567"),
    }
    for name, queryset in plans.items():
        plan = queryset.order_by("-date_created", "-uuid")[:51].explain()
        assert "Index" in plan and f"Seq Scan on {table}" not in plan, (name, plan)


def test_a_lone_surrogate_escape_in_jsonl_is_rejected_not_a_crash(tmp_path):
    """JSON may spell a half of a UTF-16 pair alone (\\ud800): no text can hold it, so the row is
    refused where it stands; a whole pair (an emoji spelt \\ud83d\\ude00) is text like any other."""
    good, other = (DATA / "good.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    lines = [good]
    for number, (key, value) in enumerate(
        [("subject", "\ud800"), ("details", {"phone": "+79161234567", "x\udfff": 1}), ("subject", "ok \U0001f600")],
        start=900,
    ):
        row = json.loads(other)
        row["oracle_id"] = number
        row[key] = value
        lines.append(json.dumps(row))  # ASCII: escapes, as a JSON writer would put them
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, summary, report = run(path, tmp_path)
    assert status == 1 and "Rows: 4, created: 2, updated: 0, unchanged: 0, rejected: 2" in summary
    assert [(row["line"], row["column"], row["code"]) for row in report] == [
        ("2", "subject", "invalid_text"),
        ("3", "details", "invalid_text"),
    ]
    assert by_oracle_id()[902].subject == "ok \U0001f600"


def test_json_nested_past_the_recursion_limit_is_rejected_not_a_crash(tmp_path):
    good_jsonl, other = (DATA / "good.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    deep = "[" * 5_000 + "]" * 5_000  # far past the 1,000 frames, well within a CSV cell
    path = tmp_path / "deep.jsonl"
    path.write_text(f'{good_jsonl}\n{{"oracle_id": 900, "details": {deep}}}\n', encoding="utf-8")
    status, summary, report = run(path, tmp_path)
    assert status == 1 and "Rows: 2, created: 1" in summary
    assert [(row["line"], row["code"]) for row in report] == [("2", "invalid_json")]
    rows = (DATA / "good.csv").read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].replace('"{""phone"": ""+79161234567""}"', deep)
    path = tmp_path / "deep.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    status, summary, report = run(path, tmp_path)
    assert status == 1 and "created: 4" in summary
    assert [(row["line"], row["column"], row["code"]) for row in report] == [("2", "details", "invalid_json")]


def test_a_load_without_events_or_with_events_stored_keeps_the_events_indexes(tmp_path, monkeypatch):
    events = _secondary_indexes(CommunicationEvent)
    others = _secondary_indexes(Communication, CommunicationHistory)
    monkeypatch.setattr(loader, "DEFER_INDEXES_FROM", 5)
    dropped = []
    original = bulkload.copy

    def copy(cursor, table, columns, chunks):
        dropped.append(_secondary_indexes())
        original(cursor, table, columns, chunks)

    monkeypatch.setattr(bulkload, "copy", copy)
    status, summary, _ = run("good.csv", tmp_path, "--no-events")
    assert status == 0 and f"Secondary indexes: {len(others)} built after the load (" in summary
    assert dropped and all(names == events for names in dropped)
    assert not CommunicationEvent.objects.exists()
    Communication.objects.all().delete()  # the events stay: they outlive their communications
    IdTranslation.objects.all().delete()
    run("good.csv", tmp_path)
    assert CommunicationEvent.objects.count() == 5
    Communication.objects.all().delete()
    IdTranslation.objects.all().delete()
    dropped.clear()
    status, summary, _ = run("good.csv", tmp_path)
    assert status == 0 and f"Secondary indexes: {len(others)} built after the load (" in summary
    assert dropped and all(names == events for names in dropped)
    assert CommunicationEvent.objects.count() == 10
    assert _secondary_indexes() == events | others
