"""Benchmark: import_id_translations against a raw `psql \\copy` of the same file, same run.

    .venv/bin/python bench/import_id_translations.py [--rows 1000000]

Makes a CSV of N pairs, a fresh PostgreSQL database, then times
  1. baseline: `psql \\copy` into a table of the same shape (both sides unique);
  2. `manage.py import_id_translations` into the migrated table;
and prints rows/s of each, their ratio and the importer's peak memory (max RSS).
Target (issue 4): ratio >= 0.5, peak memory < 200 MB.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB = "communications_bench"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]


def run_measured(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read().decode()
    err = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed:\n{out}\n{err}")
    if out.strip():
        print("   ", out.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    csv_path = out_dir / f"pairs_{args.rows}.csv"
    if not csv_path.exists():
        with csv_path.open("w") as handle:
            handle.write("flora_uuid,oracle_id\n")
            for n in range(1, args.rows + 1):
                handle.write(f"{uuid.uuid4()},{n}\n")
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB, {args.rows} rows)")

    subprocess.run(
        [*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "-c", f"CREATE DATABASE {DB}", "postgres"], check=True
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "DEBUG": "1",
    }
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    subprocess.run(
        # The same shape: columns, defaults, unique indexes, the check and the created_by index.
        [*PSQL, "-d", DB, "-c", "CREATE TABLE raw_copy (LIKE id_translations_idtranslation INCLUDING ALL)"],
        check=True,
    )

    print("baseline: psql \\copy")
    copy_seconds, _ = run_measured(
        [*PSQL, "-d", DB, "-c", f"\\copy raw_copy (flora_uuid, oracle_id) FROM '{csv_path}' CSV HEADER"], env
    )
    print("import_id_translations")
    import_seconds, import_mb = run_measured(
        [PYTHON, "manage.py", "import_id_translations", str(csv_path), "--no-progress"], env
    )
    print("import_id_translations again (re-run: everything already present)")
    rerun_seconds, rerun_mb = run_measured(
        [PYTHON, "manage.py", "import_id_translations", str(csv_path), "--no-progress"], env
    )

    copy_rate = args.rows / copy_seconds
    import_rate = args.rows / import_seconds
    print()
    print("| step | seconds | rows/s | vs raw COPY | peak memory |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| psql \\copy (baseline) | {copy_seconds:.1f} | {copy_rate:,.0f} | 1.00 | — |")
    ratio = import_rate / copy_rate
    print(f"| import_id_translations | {import_seconds:.1f} | {import_rate:,.0f} | {ratio:.2f} | {import_mb} MB |")
    print(
        f"| re-run (all present) | {rerun_seconds:.1f} | {args.rows / rerun_seconds:,.0f} | "
        f"{args.rows / rerun_seconds / copy_rate:.2f} | {rerun_mb} MB |"
    )
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "postgres"], check=True)


if __name__ == "__main__":
    main()
