"""Benchmark: import_communications against a raw `psql \\copy` of the same rows, same run.

    .venv/bin/python bench/import_communications.py [--rows 1000000] [--requests 100]

Generates N communications (`generate_communications`, CSV), makes a fresh PostgreSQL database,
then times
  1. baseline: `psql \\copy` of the file into `raw_copy`, a table made `LIKE` the communications
     table `INCLUDING ALL` (columns, defaults, indexes, checks), plus an `oracle_id` column and
     database defaults for what the file does not carry (uuid, date_updated, version);
  2. `manage.py import_communications FILE` into the empty migrated tables: every rule checked,
     the ID translations and a history row per communication written, ANALYZE at the end;
and prints rows/s of both, their ratio and the importer's peak RSS. Then serves the app with
gunicorn and times the list filtered by status right after the import (p50), and again after a
second ANALYZE: the import's own ANALYZE must leave nothing to gain (within 1.5x).
Targets (issue 8): ratio >= 0.5, peak RSS < 300 MB.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB = "communications_bench_import"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
PORT = 19010
TABLE = "communications_communication"
# The file's columns as the table names them (the importer maps `method` to `method_id`).
FILE_COLUMNS = (
    "oracle_id, method_id, kind, direction, status, client_uuid, employee_uuid, dealer_uuid, subject, comment, "
    "result, date_planned_start, date_planned_finish, date_start, date_finish, cancel_reason, fail_reason, "
    "details, date_created, date_deleted"
)
TEXTS = "subject, comment, result, cancel_reason, fail_reason"  # empty cells are '' there, not NULL


def run_with_rss(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{command[:3]} exited {code}:\n{out}")
    if out.strip():
        print("   ", out.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss // 1024


def p50(session: requests.Session, url: str, count: int) -> float:
    session.get(url).raise_for_status()  # warm up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    csv_path = out_dir / f"communications_{args.rows}.csv"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "DEBUG": "0",  # as in production
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    manage = [PYTHON, "manage.py"]
    subprocess.run(
        [*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "-c", f"CREATE DATABASE {DB}", "postgres"], check=True
    )
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    if not csv_path.exists():
        started = time.perf_counter()
        subprocess.run(
            [*manage, "generate_communications", str(args.rows), str(csv_path)], env=env, cwd=ROOT, check=True
        )
        print(f"generated in {time.perf_counter() - started:.0f} s")
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB, {args.rows} rows)")

    subprocess.run(
        [
            *PSQL,
            "-d",
            DB,
            "-c",
            f"CREATE TABLE raw_copy (LIKE {TABLE} INCLUDING ALL); "
            "ALTER TABLE raw_copy ADD COLUMN oracle_id bigint, ALTER uuid SET DEFAULT gen_random_uuid(), "
            "ALTER date_updated SET DEFAULT now(), ALTER version SET DEFAULT 1",
        ],
        check=True,
    )
    print("baseline: psql \\copy", flush=True)
    copy_seconds, _ = run_with_rss(
        [
            *PSQL,
            "-d",
            DB,
            "-c",
            f"\\copy raw_copy ({FILE_COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv, HEADER, FORCE_NOT_NULL ({TEXTS}))",
        ],
        env,
    )
    subprocess.run([*PSQL, "-d", DB, "-c", "DROP TABLE raw_copy"], check=True)
    print("import_communications", flush=True)
    batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    import_seconds, import_mb = run_with_rss(
        [*manage, "import_communications", str(csv_path), "--no-progress", "--errors", os.devnull, *batch], env
    )
    copy_rate = args.rows / copy_seconds
    import_rate = args.rows / import_seconds
    print(f"    baseline {copy_seconds:.1f} s; import {import_seconds:.1f} s, {import_mb} MB", flush=True)

    # The list right after the import, then after another ANALYZE.
    out = subprocess.run(
        [*manage, "setup_demo", "--count", "0"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    token = next(line.split()[-1] for line in out.splitlines() if line.startswith("API token:"))
    gunicorn = [PYTHON, "-m", "gunicorn", "communications_project.wsgi", "--bind", f"127.0.0.1:{PORT}"]
    server = subprocess.Popen([*gunicorn, "--workers", "1", "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        base = f"http://127.0.0.1:{PORT}"
        for _ in range(300):
            try:
                requests.get(f"{base}/healthz", timeout=5).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.5)
        url = f"{base}/v3/communications?status=failed&page_size=50"
        after_import = p50(session, url, args.requests)
        subprocess.run([*PSQL, "-d", DB, "-c", "ANALYZE"], check=True)
        after_analyze = p50(session, url, args.requests)
    finally:
        server.terminate()
        server.wait()

    print()
    print(f"rows: {args.rows:,}")
    print("| step | seconds | rows/s | vs raw COPY | peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| psql \\copy (baseline) | {copy_seconds:.1f} | {copy_rate:,.0f} | 1.00 | — |")
    print(
        f"| import_communications | {import_seconds:.1f} | {import_rate:,.0f} | "
        f"{import_rate / copy_rate:.2f} | {import_mb} MB |"
    )
    print()
    print("| GET /v3/communications?status=failed | p50 ms |")
    print("| --- | --- |")
    print(f"| right after the import | {after_import:.1f} |")
    print(f"| after a second ANALYZE | {after_analyze:.1f} |")
    print(f"| ratio | {after_import / after_analyze:.2f} (must be < 1.5) |")
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "postgres"], check=True)


if __name__ == "__main__":
    main()
