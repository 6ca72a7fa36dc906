"""Benchmark: import_communications against a raw COPY of the very rows it stored, same run.

    .venv/bin/python bench/import_communications.py [--rows 1000000] [--db NAME] [--requests 100] [--rerun]

Generates N communications (`generate_communications`, CSV; kept in bench/out/ for the next run),
makes a fresh PostgreSQL database, migrates it, then:
  1. `manage.py import_communications FILE` into the empty tables: every rule checked, the ID
     translations and a history row per communication written (and whatever else the import
     writes), ANALYZE at the end; wall time of the process (start-up and the file's UTF-8 pre-read
     included) and its peak RSS;
  2. the list filtered by status through gunicorn right after the import (p50), and again after a
     second ANALYZE: the import's own ANALYZE must leave nothing to gain (within 1.5x); with
     --rerun, the same import again (a re-delivered file: every row unchanged);
  3. the baseline, as a client with the same rows would load them: every table the import wrote
     (found by counting the rows of every table before and after it: communications, history, ID
     translations, events) is copied out with `psql \\copy ... TO` in its physical order (the order
     the import stored the rows), and `psql \\copy`ed back into a `CREATE TABLE raw_<table>
     (LIKE <table> INCLUDING ALL)` copy (columns, defaults, every index and check; no foreign
     keys, which LIKE does not copy), one table after the other, timed each;
  4. for reference, the same again with the copies' secondary indexes dropped before their COPY
     and built after it (what an importer may do for a load into empty tables): what PostgreSQL alone
     needs for these rows that way.
A CHECKPOINT precedes the import and each baseline, so none pays for another's dirty pages.
Prints rows/s, the import's ratio against the raw COPY of all the tables it writes and against
the communications table alone, and its peak RSS.
Targets (issue 17): >= 0.8x all the tables, >= 0.6x the communications table alone, RSS < 300 MB.
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
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
PORT = 19010
COMMUNICATIONS = "communications_communication"
RSS_LIMIT_MB = 300


def run_with_rss(command: list[str], env: dict) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and stdout of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{command[:3]} exited {code}:\n{out}")
    return seconds, usage.ru_maxrss // 1024, out


def psql(db: str, *commands: str, capture: bool = False) -> str:
    args = [*PSQL, "-d", db]
    for command in commands:
        args += ["-c", command]
    if capture:
        args[1:1] = ["-A", "-t"]
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}  # no "does not exist, skipping"
    return subprocess.run(args, check=True, capture_output=capture, text=True, env=env).stdout or ""


def row_counts(db: str) -> dict[str, int]:
    """Rows of every table of the public schema (exact: count(*))."""
    tables = psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", capture=True).split()
    if not tables:
        return {}
    query = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in tables)
    counts = {}
    for line in psql(db, query, capture=True).splitlines():
        name, count = line.split("|")
        counts[name] = int(count)
    return counts


def p50(session: requests.Session, url: str, count: int) -> float:
    session.get(url).raise_for_status()  # warm up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def list_after_import(db: str, env: dict, requests_count: int) -> tuple[float, float]:
    manage = [PYTHON, "manage.py"]
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
        after_import = p50(session, url, requests_count)
        psql(db, "ANALYZE")
        after_analyze = p50(session, url, requests_count)
    finally:
        server.terminate()
        server.wait()
    return after_import, after_analyze


def secondary_indexes(db: str, table: str) -> list[str]:
    """CREATE INDEX statements of the table's indexes that back no primary key or unique one."""
    query = (
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        f"WHERE i.indrelid = '{table}'::regclass AND NOT i.indisunique AND NOT i.indisprimary ORDER BY 1"
    )
    return psql(db, query, capture=True).splitlines()


def raw_copy(db: str, tables: list[str], out_dir: Path, *, indexes_after: bool = False) -> dict[str, float]:
    """Seconds of `psql \\copy` of each table's stored rows into a LIKE ... INCLUDING ALL copy. With
    `indexes_after`, the copy's secondary indexes are dropped first and built after its COPY (timed
    with it)."""
    seconds = {}
    for table in tables:
        dump = out_dir / f"{db}.{table}.copy"
        if not dump.exists():
            psql(db, f"\\copy {table} TO '{dump}'")  # physical order: the order the import stored them
        psql(db, f"DROP TABLE IF EXISTS raw_{table}", f"CREATE TABLE raw_{table} (LIKE {table} INCLUDING ALL)")
    psql(db, "CHECKPOINT")
    for table in tables:
        dump = out_dir / f"{db}.{table}.copy"
        rebuild = secondary_indexes(db, f"raw_{table}") if indexes_after else []
        for statement in rebuild:
            psql(db, f"DROP INDEX {statement.split()[2]}")
        started = time.perf_counter()
        psql(db, f"\\copy raw_{table} FROM '{dump}'")
        if rebuild:
            psql(db, "SET maintenance_work_mem = '256MB'", *rebuild)
        seconds[table] = time.perf_counter() - started
    for table in tables:
        psql(db, f"DROP TABLE raw_{table}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="communications_bench_import", help="dropped and created afresh")
    parser.add_argument("--requests", type=int, default=100, help="per p50 of the list; 0 skips the list")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--rerun", action="store_true", help="also time the same import again (all unchanged)")
    args = parser.parse_args()
    db = args.db

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    csv_path = out_dir / f"communications_{args.rows}.csv"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "DEBUG": "0",  # as in production
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    manage = [PYTHON, "manage.py"]
    psql("postgres", f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    if not csv_path.exists():
        started = time.perf_counter()
        subprocess.run(
            [*manage, "generate_communications", str(args.rows), str(csv_path)], env=env, cwd=ROOT, check=True
        )
        print(f"generated in {time.perf_counter() - started:.0f} s")
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows)")

    before = row_counts(db)
    psql(db, "CHECKPOINT")
    print("import_communications", flush=True)
    batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    import_seconds, import_mb, out = run_with_rss(
        [*manage, "import_communications", str(csv_path), "--no-progress", "--errors", os.devnull, *batch], env
    )
    for line in out.strip().splitlines():
        print("   ", line)
    after = row_counts(db)
    written = {table: after[table] - before.get(table, 0) for table in after if after[table] > before.get(table, 0)}
    if written.get(COMMUNICATIONS) != args.rows:
        raise SystemExit(f"the import stored {written.get(COMMUNICATIONS)} communications, not {args.rows}")
    tables = [COMMUNICATIONS, *sorted(table for table in written if table != COMMUNICATIONS)]

    if args.requests:
        after_import, after_analyze = list_after_import(db, env, args.requests)
    if args.rerun:
        print("import_communications again (every row unchanged)", flush=True)
        psql(db, "CHECKPOINT")
        rerun_seconds, rerun_mb, out = run_with_rss(
            [*manage, "import_communications", str(csv_path), "--no-progress", "--errors", os.devnull, *batch], env
        )
        for line in out.strip().splitlines():
            print("   ", line)
    print("baseline: psql \\copy of the stored rows into LIKE ... INCLUDING ALL copies", flush=True)
    copies = raw_copy(db, tables, out_dir)
    all_seconds = sum(copies.values())
    print("for reference: the same, the copies' secondary indexes built after their COPY", flush=True)
    copies_after = raw_copy(db, tables, out_dir, indexes_after=True)
    after_seconds = sum(copies_after.values())
    for table in tables:
        (out_dir / f"{db}.{table}.copy").unlink()

    rate = args.rows / import_seconds
    print()
    print(f"rows: {args.rows:,}; the import wrote {', '.join(f'{t} {written[t]:,}' for t in tables)}")
    print("| step | seconds | communications/s | import vs it |")
    print("| --- | --- | --- | --- |")
    for table in tables:
        print(f"| raw COPY {table} ({written[table]:,} rows) | {copies[table]:.1f} | | |")
    print(
        f"| **raw COPY, all {len(tables)} tables** | {all_seconds:.1f} | {args.rows / all_seconds:,.0f} | "
        f"**{all_seconds / import_seconds:.2f}** |"
    )
    print(
        f"| **raw COPY, communications alone** | {copies[COMMUNICATIONS]:.1f} | "
        f"{args.rows / copies[COMMUNICATIONS]:,.0f} | **{copies[COMMUNICATIONS] / import_seconds:.2f}** |"
    )
    print(f"| import_communications | {import_seconds:.1f} | {rate:,.0f} | peak RSS {import_mb} MB |")
    if args.rerun:
        print(
            f"| the same import again (all unchanged) | {rerun_seconds:.1f} | {args.rows / rerun_seconds:,.0f} | "
            f"peak RSS {rerun_mb} MB |"
        )
    print(
        f"| for reference: raw COPY, all {len(tables)} tables, secondary indexes built after | {after_seconds:.1f} | "
        f"{args.rows / after_seconds:,.0f} | {after_seconds / import_seconds:.2f} |"
    )
    print()
    print(
        f"targets: all tables >= 0.80 ({all_seconds / import_seconds:.2f}), communications alone >= 0.60 "
        f"({copies[COMMUNICATIONS] / import_seconds:.2f}), peak RSS < {RSS_LIMIT_MB} MB ({import_mb} MB)"
    )
    if args.requests:
        print()
        print("| GET /v3/communications?status=failed | p50 ms |")
        print("| --- | --- |")
        print(f"| right after the import | {after_import:.1f} |")
        print(f"| after a second ANALYZE | {after_analyze:.1f} |")
        print(f"| ratio | {after_import / after_analyze:.2f} (must be < 1.5) |")
    psql("postgres", f"DROP DATABASE IF EXISTS {db}")
    if import_mb >= RSS_LIMIT_MB:
        raise SystemExit(f"peak RSS {import_mb} MB, over {RSS_LIMIT_MB} MB")


if __name__ == "__main__":
    main()
