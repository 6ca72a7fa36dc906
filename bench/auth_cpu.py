"""Benchmark: CPU per request of each way to authenticate (issue 21), measured where load does not reach.

    .venv/bin/python bench/auth_cpu.py [--rows 2000] [--requests 400] [--blocks 6] [--db NAME]

On a shared machine requests/s swing with the neighbours (bench/api_throughput.py's tables); CPU
time does much less. This script serves GET one and the first list page in-process (Django's test
client, the production settings of bench/settings.py, no HTTP server) authenticated three ways:
main's DRF token of before (bench/legacy_token.py), an API key, and a JWT from
bench/identity_provider.py. It counts the CPU time of this process and of its PostgreSQL backend
(from /proc) per request, in blocks of `--requests`, the three ways taking turns `--blocks` times;
the least of each way's blocks counts. Prints ms per request and the ratio DRF token / each.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"
TICK = 1 / os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK  # utime + stime, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=400, help="requests per block")
    parser.add_argument("--blocks", type=int, default=6, help="blocks of each way")
    parser.add_argument("--db", default="communications_bench_auth_cpu")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.identity_provider import IdentityProvider

    provider = IdentityProvider()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"{SERVER}/{args.db}",
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="testserver",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="WARNING",
        **provider.env(),
    )
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {args.db}")
        connection.execute(f"CREATE DATABASE {args.db}")
    try:
        load = [sys.executable, "bench/load.py", str(args.rows), "0"]
        data = json.loads(subprocess.run(load, cwd=ROOT, check=True, capture_output=True).stdout)
        measure(args, data, provider)
    finally:
        provider.close()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {args.db}")


def measure(args, data: dict, provider) -> None:
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic for a benchmark
    django.setup()
    from django.db import connection
    from django.test import Client

    headers = {
        "DRF token": f"DRFToken {data['legacy_token']}",
        "API key": f"Token {data['token']}",
        "JWT": f"Bearer {provider.token(username=f'bench-cpu-{uuid.uuid4().hex[:6]}')}",
    }
    uuids = data["uuids"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def block(way: str, what: str, count: int) -> float:
        client = Client(HTTP_AUTHORIZATION=headers[way])
        started, started_backend = time.process_time(), backend_cpu(backend)
        for number in range(count):
            path = f"/v2/communications/{uuids[number % len(uuids)]}" if what == "one" else "/v3/communications"
            response = client.get(path)
            assert response.status_code == 200, (way, response.content[:300])
        return (time.process_time() - started + backend_cpu(backend) - started_backend) / count * 1000

    print(f"\nCPU per request (this process + its PostgreSQL backend), {args.rows:,} rows, "
          f"best of {args.blocks} blocks of {args.requests}\n")  # fmt: skip
    print("| request | " + " | ".join(f"{way} ms" for way in headers) + " | DRF token / API key | DRF token / JWT |")
    print("|" + " --- |" * (len(headers) + 3))
    for what, name in (("one", "GET one (full)"), ("list", "list, page of 50")):
        for way in headers:
            block(way, what, 50)  # warm: the JWT's user made, statements and caches ready
        best = dict.fromkeys(headers, float("inf"))
        for _ in range(args.blocks):  # the ways take turns, so the neighbours' load falls on each alike
            for way in headers:
                best[way] = min(best[way], block(way, what, args.requests))
        base = best["DRF token"]
        cells = " | ".join(f"{best[way]:.3f}" for way in headers)
        print(f"| {name} | {cells} | **{base / best['API key']:.2f}** | **{base / best['JWT']:.2f}** |", flush=True)


if __name__ == "__main__":
    main()
