"""Benchmark: read throughput of the API against bare Django views, in the same run (issue 10).

    .venv/bin/python bench/api_throughput.py [--rows 100000] [--duration 10] [--rounds 3]
    .venv/bin/python bench/api_throughput.py --flat 10000 1000000     # latency as the table grows

Needs `wrk` (Debian: `apt-get install wrk`) and `psql`-free access to PostgreSQL at DATABASE_HOST
(default postgres://postgres@127.0.0.1:5432). For each size it creates a fresh database, loads N
generated communications with COPY and ANALYZEs (bench/load.py), serves `bench.settings` (the
production settings plus the bare baselines of bench/bare.py) with gunicorn, 2 sync workers, and
loads each endpoint with `wrk` (keep-alive client, `--connections`, `--duration` seconds a run).

Throughput mode: every scenario runs against the API and its bare baseline alternately,
`--rounds` times each; the best run of each counts. Prints requests/s, p50/p99, errors (non-2xx
and socket errors; must be zero) and the ratio API / bare, and draws requests/s of both as bars
into docs/bench-throughput.svg. Then the credentials (issue 21): GET one and a list page with an
API key and with an identity provider's JWT (bench/identity_provider.py serves its keys), each
against main's DRF token path of before (bench/legacy_token.py), the same way.
Flat mode: the API only, at each size; prints p50/p99 and the ratio to the smallest size, and draws
p50 against the table size into docs/bench-latency-vs-rows.svg.
`--plot PATH` writes the picture elsewhere, `--no-plot` not at all (CI's smoke run).
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.identity_provider import IdentityProvider  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"

from communications_project.svg import grouped_hbar_chart, line_chart  # noqa: E402 (plain Python, no Django)

PLOTS = {"throughput": ROOT / "docs" / "bench-throughput.svg", "flat": ROOT / "docs" / "bench-latency-vs-rows.svg"}


@dataclass
class Target:
    method: str
    paths: list[str]
    body: str = ""
    authorization: str = ""  # the Authorization header; empty: `Token <the API key>`


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    errors: int
    cpu_ms: float = 0.0  # CPU of the server (gunicorn workers + their PostgreSQL backends) per request


TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def wrk_script(target: Target, token: str) -> str:
    paths = ", ".join(json.dumps(p) for p in target.paths)
    authorization = target.authorization or f"Token {token}"
    return f"""
wrk.method = "{target.method}"
wrk.headers["Authorization"] = "{authorization}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {json.dumps(target.body)}
local paths = {{{paths}}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(server: "Server", target: Target, token: str, args) -> Result:
    base = server.base
    before = cpu_ticks(server.pids())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(wrk_script(target, token))
        script.flush()
        command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "10s", "--latency"]
        out = subprocess.run([*command, "-s", script.name, base], check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    p50, p99 = (_ms(*re.fullmatch(r"([\d.]+)(\w+)", latency[k]).groups()) for k in ("50", "99"))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    after = cpu_ticks(server.pids())
    used = sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) * TICK_MS
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Result(rps, p50, p99, errors, used / max(requests_done, 1))


def best_of(runs: list[Result]) -> Result:
    """The run with the most requests/s (the least disturbed), the least CPU per request, every error."""
    best = max(runs, key=lambda r: r.rps)
    return Result(best.rps, best.p50, best.p99, sum(r.errors for r in runs), min(r.cpu_ms for r in runs))


def check(base: str, target: Target, token: str) -> None:
    """Every target answers 200 with a non-empty body before it is timed."""
    headers = {"Authorization": target.authorization or f"Token {token}", "Content-Type": "application/json"}
    response = requests.request(target.method, base + target.paths[0], data=target.body, headers=headers, timeout=30)
    assert response.status_code == 200, (target.paths[0], response.status_code, response.text[:300])
    body = response.json()
    assert body.get("results", body) if isinstance(body, dict) else body, (target.paths[0], body)


class Server:
    """A fresh database of `rows` communications, served by gunicorn."""

    def __init__(self, rows: int, args):
        self.rows, self.args = rows, args
        self.db = f"{args.db}_{rows}"
        self.base = f"http://127.0.0.1:{args.port}"

    def __enter__(self):
        self.identity_provider = IdentityProvider()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {self.db}")
            connection.execute(f"CREATE DATABASE {self.db}")
        self.env = {
            **os.environ,
            "DATABASE_URL": f"{SERVER}/{self.db}",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "0",  # production: DEBUG would record every query
            "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "SECURE_SSL_REDIRECT": "false",
            "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
            "LOG_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore::UserWarning",  # no collectstatic here; whitenoise says so per worker
            **self.identity_provider.env(),
        }
        started = time.monotonic()
        load = [sys.executable, "bench/load.py", str(self.rows), str(self.args.deep)]
        self.data = json.loads(subprocess.run(load, env=self.env, cwd=ROOT, check=True, capture_output=True).stdout)
        print(f"loaded {self.rows:,} rows in {time.monotonic() - started:.0f} s", file=sys.stderr)
        gunicorn = [sys.executable, "-m", "gunicorn", "communications_project.wsgi", "--workers", "2"]
        gunicorn += ["--bind", f"127.0.0.1:{self.args.port}", "--log-level", "warning"]
        self.process = subprocess.Popen(gunicorn, env=self.env, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).ok:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.__exit__()
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The gunicorn workers and the PostgreSQL backends serving this database."""
        workers = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            backends = [row[0] for row in connection.execute(query, [self.db])]
        return [int(pid) for pid in workers.split()] + backends

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait()
        self.identity_provider.close()
        if not self.args.keep:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {self.db}")


def scenarios(data: dict) -> dict[str, tuple[Target, Target]]:
    """name -> (the API, its bare baseline)."""
    uuids, clients = data["uuids"], data["clients"]

    def collection(view: str) -> str:
        return json.dumps({"uuids": uuids, "view": view})

    return {
        "GET one (full)": (
            Target("GET", [f"/v2/communications/{u}" for u in uuids]),
            Target("GET", [f"/bare/communications/{u}" for u in uuids]),
        ),
        "list, page of 50": (Target("GET", ["/v3/communications"]), Target("GET", ["/bare/communications"])),
        "list, status=in_work": (
            Target("GET", ["/v3/communications?status=in_work"]),
            Target("GET", ["/bare/communications?status=in_work"]),
        ),
        "list, client_uuid=…": (
            Target("GET", [f"/v3/communications?client_uuid={c}" for c in clients]),
            Target("GET", [f"/bare/communications?client_uuid={c}" for c in clients]),
        ),
        "collection of 1,000 (short)": (
            Target("POST", ["/v3/collections/communications"], collection("short")),
            Target("POST", ["/bare/collections/communications"], collection("short")),
        ),
        "collection of 1,000 (full)": (
            Target("POST", ["/v3/collections/communications"], collection("full")),
            Target("POST", ["/bare/collections/communications"], collection("full")),
        ),
        "methods dictionary": (
            Target("GET", ["/v2/dicts/communications-methods"]),
            Target("GET", ["/bare/dicts/communications-methods"]),
        ),
    }


def header(args, what: str) -> str:
    return (
        f"{what}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.node()}, {os.cpu_count()} cores; "
        f"wrk {args.connections} connections, {args.duration} s a run, best of {args.rounds}"
    )


def credential_scenarios(data: dict, jwt: str) -> dict[str, tuple[Target, Target]]:
    """name -> (the API with an API key or a JWT, the API with main's DRF token of before issue 21)."""
    uuids, drf_token = data["uuids"], f"DRFToken {data['legacy_token']}"
    one = [f"/v2/communications/{u}" for u in uuids]
    return {
        "GET one (full), API key": (Target("GET", one), Target("GET", one, authorization=drf_token)),
        "GET one (full), JWT": (
            Target("GET", one, authorization=f"Bearer {jwt}"),
            Target("GET", one, authorization=drf_token),
        ),
        "list, page of 50, API key": (
            Target("GET", ["/v3/communications"]),
            Target("GET", ["/v3/communications"], authorization=drf_token),
        ),
        "list, page of 50, JWT": (
            Target("GET", ["/v3/communications"], authorization=f"Bearer {jwt}"),
            Target("GET", ["/v3/communications"], authorization=drf_token),
        ),
    }


def compare(
    server: "Server",
    pairs: dict[str, tuple[Target, Target]],
    sides: tuple[str, str],
    args,
    *,
    measured: list[tuple[str, list[float]]] | None = None,
) -> bool:
    """One table: each pair's two sides alternately, `--rounds` times; the best run of each, and
    ratios. `measured` gets each pair's best requests/s of both sides (for the plot)."""
    token = server.data["token"]
    only = [name for name in pairs if not args.only or any(o in name for o in args.only)]
    if not only:
        return True
    for name in only:
        for target in pairs[name]:
            check(server.base, target, token)
    left, right = sides
    print(
        f"\n| request | {left} req/s | p50 ms | p99 ms | CPU ms/req | {right} req/s | p50 ms | p99 ms | CPU ms/req "
        f"| errors | {left} / {right} req/s | {right} / {left} CPU |"
    )
    print("|" + " --- |" * 12)
    ok = True
    for name in only:
        runs: tuple[list[Result], list[Result]] = ([], [])
        for round_number in range(args.rounds):
            order = (0, 1) if round_number % 2 == 0 else (1, 0)  # alternate who goes first
            for side in order:
                runs[side].append(run_wrk(server, pairs[name][side], token, args))
        api, bare = (best_of(side_runs) for side_runs in runs)
        if measured is not None:
            measured.append((name, [api.rps, bare.rps]))
        errors = api.errors + bare.errors
        ok = ok and errors == 0
        print(
            f"| {name} | {api.rps:,.0f} | {api.p50:.1f} | {api.p99:.1f} | {api.cpu_ms:.1f} | {bare.rps:,.0f} "
            f"| {bare.p50:.1f} | {bare.p99:.1f} | {bare.cpu_ms:.1f} | {errors} | **{api.rps / bare.rps:.2f}** "
            f"| **{bare.cpu_ms / api.cpu_ms:.2f}** |",
            flush=True,
        )
    return ok


def throughput(args) -> bool:
    with Server(args.rows, args) as server:
        print(f"\n{header(args, f'{args.rows:,} communications')}")
        measured: list[tuple[str, list[float]]] = []
        ok = compare(server, scenarios(server.data), ("API", "bare"), args, measured=measured)
        plot(
            args,
            "throughput",
            grouped_hbar_chart(
                measured,
                series=["API", "bare Django view"],
                title=f"API read throughput, {args.rows:,} rows ({dt.date.today()}, {os.cpu_count()} cores)",
                unit="requests/s, best of the rounds",
            ),
        )
        # Issue 21: the same reads with an API key and with a JWT, against main's DRF token path.
        credentials = credential_scenarios(server.data, server.identity_provider.token())
        ok = compare(server, credentials, ("new", "DRF token"), args) and ok
        hits = server.identity_provider.hits
        print(f"\nidentity provider: {hits['discovery']} discovery, {hits['jwks']} JWKS requests (gunicorn workers: 2)")
        return ok


def plot(args, mode: str, svg: str) -> None:
    if args.no_plot:
        return
    path = Path(args.plot) if args.plot else PLOTS[mode]
    path.write_text(svg, encoding="utf-8")
    print(f"drew {path}", file=sys.stderr)


def flat(args) -> bool:
    results: dict[int, dict[str, Result]] = {}
    deep_rows = {}
    for rows in args.flat:
        with Server(rows, args) as server:
            data, token = server.data, server.data["token"]
            deep_rows[rows] = data["deep_rows"]
            targets = {
                "list, first page": Target("GET", ["/v3/communications"]),
                "list, deep page by cursor": Target("GET", [f"/v3/communications?cursor={data['deep_cursor']}"]),
                "list, status=in_work": Target("GET", ["/v3/communications?status=in_work"]),
                "list, client_uuid=…": Target("GET", [f"/v3/communications?client_uuid={c}" for c in data["clients"]]),
                "GET one (full)": Target("GET", [f"/v2/communications/{u}" for u in data["uuids"]]),
                "collection of 1,000 (short)": Target(
                    "POST", ["/v3/collections/communications"], json.dumps({"uuids": data["uuids"], "view": "short"})
                ),
            }
            results[rows] = {}
            for name, target in targets.items():
                check(server.base, target, token)
                results[rows][name] = best_of([run_wrk(server, target, token, args) for _ in range(args.rounds)])
    small, *others = args.flat
    deep = ", ".join(f"{deep_rows[r]:,} rows in at {r:,}" for r in args.flat)
    print(f"\n{header(args, 'API latency by table size')}; deep page: {deep}\n")
    columns = " | ".join(f"{r:,}: req/s | p50 ms | p99 ms | CPU ms/req" for r in args.flat)
    print(f"| request | {columns} | errors | p50 ratio | CPU ratio |")
    print("|" + " --- |" * (4 + 4 * len(args.flat)))
    ok = True
    for name in results[small]:
        row = [results[r][name] for r in args.flat]
        errors = sum(r.errors for r in row)
        ok = ok and errors == 0
        cells = " | ".join(f"{r.rps:,.0f} | {r.p50:.1f} | {r.p99:.1f} | {r.cpu_ms:.1f}" for r in row)
        ratios = ", ".join(f"{results[r][name].p50 / row[0].p50:.2f}" for r in others)
        cpu = ", ".join(f"{results[r][name].cpu_ms / row[0].cpu_ms:.2f}" for r in others)
        print(f"| {name} | {cells} | {errors} | **{ratios}** | **{cpu}** |", flush=True)
    series = {name: [(rows, results[rows][name].p50) for rows in args.flat] for name in results[small]}
    title = f"API latency as the table grows ({dt.date.today()}, {os.cpu_count()} cores)"
    plot(args, "flat", line_chart(series, title=title, x_label="rows", y_label="p50, ms", log_x=True))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--flat", type=int, nargs="+", help="table sizes to compare (API latency only)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--deep", type=int, default=50_000, help="rows in of the deep list page (flat mode)")
    parser.add_argument("--only", nargs="*", help="scenarios whose name contains one of these")
    parser.add_argument("--port", type=int, default=18310)
    parser.add_argument("--db", default="communications_bench_throughput")
    parser.add_argument("--keep", action="store_true", help="keep the database(s)")
    parser.add_argument(
        "--plot", help="where to draw the SVG (default docs/bench-throughput.svg or -latency-vs-rows.svg)"
    )
    parser.add_argument("--no-plot", action="store_true", help="draw nothing")
    args = parser.parse_args()
    ok = flat(args) if args.flat else throughput(args)
    if not ok:
        sys.exit("errors: every request must succeed")


if __name__ == "__main__":
    main()
