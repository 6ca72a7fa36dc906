"""Profile of import_communications: where its threads spend their time, by py-spy.

    .venv/bin/python bench/profile_import.py [--rows 100000] [--db NAME] [--top 25]

Generates N communications (as bench/import_communications.py, kept in bench/out/), imports them
into a fresh database under `py-spy record` (all threads, idle time included, 100 samples/s), and
prints per thread its share of the samples and its top functions by own time (the frame on top of
the stack) and by total time (anywhere on the stack). The raw stacks stay in bench/out/ for a
flame graph. The importer's threads: `MainThread` stores a batch (mostly waiting on PostgreSQL,
idle), `bulkload-producer` reads and checks the next one.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def summarize(raw: Path, top: int) -> None:
    threads: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    own: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    total: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # "thread (1234): bulkload-producer", or "thread (1234)" for the main thread
        ident, _, name = frames[0].removeprefix("thread ").partition(": ")
        thread = f"{name or 'main'} {ident}"
        frames = [short(frame) for frame in frames[1:]] or ["(no Python frame)"]
        samples = int(count)
        threads["all"][thread] += samples
        own[thread][frames[-1]] += samples
        for frame in set(frames):
            total[thread][frame] += samples
    grand = sum(threads["all"].values())
    print(f"samples: {grand:,} (100 per second of each thread)")
    for thread, samples in threads["all"].most_common():
        print()
        print(f"## thread {thread}: {samples:,} samples ({samples / grand:.0%})")
        print()
        print("| own % | function |")
        print("| --- | --- |")
        for frame, count in own[thread].most_common(top):
            print(f"| {count / samples:.1%} | {frame} |")
        print()
        print("| total % | function |")
        print("| --- | --- |")
        for frame, count in total[thread].most_common(top):
            print(f"| {count / samples:.1%} | {frame} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", default="communications_bench_profile", help="dropped and created afresh")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--summarize", type=Path, help="only summarize this raw profile")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.top)
        return
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    csv_path = out_dir / f"communications_{args.rows}.csv"
    raw = out_dir / f"profile_import_{args.rows}.txt"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    manage = [PYTHON, "manage.py"]
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {args.db}", "-c", f"CREATE DATABASE {args.db}", "postgres"])
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    if not csv_path.exists():
        subprocess.run(
            [*manage, "generate_communications", str(args.rows), str(csv_path)], env=env, cwd=ROOT, check=True
        )
    batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    spy = Path(PYTHON).with_name("py-spy")
    subprocess.run(
        [
            str(spy),
            "record",
            "--format",
            "raw",
            "--idle",
            "--threads",
            "--nolineno",
            "--rate",
            "100",
            "--output",
            str(raw),
            "--",
            *manage,
            "import_communications",
            str(csv_path),
            "--no-progress",
            "--errors",
            os.devnull,
            *batch,
        ],
        env=env,
        cwd=ROOT,
        check=True,
    )
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {args.db}", "postgres"], check=True)
    summarize(raw, args.top)


if __name__ == "__main__":
    main()
