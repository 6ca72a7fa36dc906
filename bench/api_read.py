"""Benchmark: the API's hot reads against baselines measured in the same run.

    .venv/bin/python bench/api_read.py [--rows 100000] [--requests 200]

Loads N demo communications into a fresh PostgreSQL database, serves the app with gunicorn on
127.0.0.1 and times sequential requests (one client: latency, not contention) of:
  - GET /healthz: the HTTP + Django floor, no database (the baseline);
  - the first list page as raw SQL through psycopg (no HTTP, no Django), for scale;
  - GET one communication, list pages of 50 and 500, a filtered list, a collection of 1,000.
Prints p50/p95 in ms and each p50 as a multiple of the /healthz p50.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
DB = "communications_bench_api"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
PORT = 18300


def timings(call, count: int) -> list[float]:
    call()  # warm up: connections, caches
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, samples: list[float], floor: float) -> str:
    p50 = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"| {name} | {p50:.1f} | {p95:.1f} | {p50 / floor:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    subprocess.run(
        [*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "-c", f"CREATE DATABASE {DB}", "postgres"], check=True
    )
    url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",  # as in production: DEBUG records every query
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    setup = [*manage, "setup_demo", "--count", str(args.rows)]
    out = subprocess.run(setup, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    token = next(line.split()[-1] for line in out.splitlines() if line.startswith("API token:"))
    subprocess.run([*PSQL, "-d", DB, "-c", "ANALYZE"], check=True)

    gunicorn = [sys.executable, "-m", "gunicorn", "communications_project.wsgi", "--bind", f"127.0.0.1:{PORT}"]
    gunicorn += ["--log-level", "warning"]
    server = subprocess.Popen([*gunicorn, "--workers", "2"], env=env, cwd=ROOT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{PORT}"
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        for _ in range(100):
            try:
                if session.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)

        with psycopg.connect(url) as connection:
            query = "SELECT uuid FROM communications_communication ORDER BY random() LIMIT 1000"
            uuids = [str(found[0]) for found in connection.execute(query)]

            def raw_page():
                connection.execute(
                    "SELECT * FROM communications_communication WHERE date_deleted IS NULL "
                    "ORDER BY date_created DESC, uuid DESC LIMIT 51"
                ).fetchall()

            raw = timings(raw_page, args.requests)

        def get(path):
            def call():
                response = session.get(base + path, timeout=10)
                assert response.status_code == 200, (path, response.status_code, response.text[:200])

            return call

        def collection():
            body = {"uuids": uuids, "view": "full"}
            response = session.post(f"{base}/v3/collections/communications", json=body, timeout=10)
            assert response.status_code == 200 and len(response.json()["results"]) == 1000

        floor = timings(get("/healthz"), args.requests)
        floor_p50 = statistics.median(floor)
        few = max(args.requests // 4, 20)
        lines = [
            row("GET /healthz (baseline)", floor, floor_p50),
            row("raw SQL: first page of 50, no HTTP", raw, floor_p50),
            row(
                "GET /v2/communications/{uuid}",
                timings(get(f"/v2/communications/{uuids[0]}"), args.requests),
                floor_p50,
            ),
            row("GET /v3/communications (50, short)", timings(get("/v3/communications"), args.requests), floor_p50),
            row(
                "GET /v3/communications?status=done&method=call",
                timings(get("/v3/communications?status=done&method=call"), args.requests),
                floor_p50,
            ),
            row(
                "GET /v3/communications (500, full)",
                timings(get("/v3/communications?page_size=500&view=full"), few),
                floor_p50,
            ),
            row("POST /v3/collections/communications (1,000, full)", timings(collection, few), floor_p50),
        ]
        print(f"\n{args.rows} communications; {args.requests} sequential requests per line ({few} for the big ones)\n")
        print("| request | p50 ms | p95 ms | p50 / healthz p50 |")
        print("| --- | --- | --- | --- |")
        print("\n".join(lines))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
        subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {DB}", "postgres"], check=True)


if __name__ == "__main__":
    main()
