"""Benchmark: GET /v3/reports/lead-response as the table grows (issue 19).

    .venv/bin/python bench/lead_response.py                      # 10,000 and 1,000,000 rows
    .venv/bin/python bench/lead_response.py --rows 10000 1000000 --duration 10 --rounds 3

For each size: a fresh database of N generated communications through the importer (bench/load.py,
the demo generator: 12 dealerships, leads over the year before today), then an attempt for three
leads in five (3 to 60 minutes after the lead, one in ten a second one later), `VACUUM (ANALYZE)`
(the state autovacuum reaches minutes after an import; `--no-vacuum` measures before it), gunicorn
with 2 sync workers, and `wrk` (1 connection: latency, not throughput) on each report below and on
`GET /v2/communications/{uuid}` (the API's cheapest read, measured in the same run as the
baseline). Prints p50/p99 per size, the ratio of each p50 to the smallest size's, and the report's
p50 over GET one's at each size (the machine's speed cancels out of that ratio).
"""

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_throughput import SERVER, Result, Server, Target, best_of, check, header, run_wrk  # noqa: E402

ATTEMPTS = """
    INSERT INTO communications_attempt (uuid, communication_id, method_id, outcome, date, comment, source, call_id,
        date_created)
    SELECT gen_random_uuid(), c.uuid, 'call', (ARRAY['reached', 'no_answer', 'busy'])[1 + (n % 3)],
        LEAST(now(), c.date_created + make_interval(mins => 3 + (hashtext(c.uuid::text) & 63) + 30 * (n - 1))),
        '', 'api', '', now()
    FROM communications_communication c, generate_series(1, 2) n
    WHERE c.direction = 'inbound' AND c.method_id IN ('site_request', 'mobile_app_request')
      AND (hashtext(c.uuid::text) & 1023) < 614 AND (n = 1 OR (hashtext(c.uuid::text) & 1023) < 61)
"""


def prepare(server: Server) -> dict:
    """Attempts on the leads, statistics, and the report's parameters for this database."""
    with psycopg.connect(f"{SERVER}/{server.db}", autocommit=True) as connection:
        connection.execute(ATTEMPTS)
        # The steady state autovacuum reaches minutes after an import: the visibility map set, so
        # the report's probes are answered from the indexes alone (`--no-vacuum`: right after it).
        tables = "communications_communication, communications_attempt"
        connection.execute(f"ANALYZE {tables}" if server.args.no_vacuum else f"VACUUM (ANALYZE) {tables}")
        dealer = connection.execute(
            "SELECT dealer_uuid FROM communications_communication WHERE dealer_uuid IS NOT NULL "
            "ORDER BY dealer_uuid LIMIT 1"
        ).fetchone()[0]
        leads, attempts = connection.execute(
            "SELECT (SELECT count(*) FROM communications_communication WHERE direction = 'inbound' "
            "AND method_id IN ('site_request', 'mobile_app_request')), (SELECT count(*) FROM communications_attempt)"
        ).fetchone()
        # The generator's dates end at today's midnight (UTC): the last 30 of its days.
        last = connection.execute("SELECT max(date_created) FROM communications_communication").fetchone()[0]
    day = (last + dt.timedelta(hours=3)).date()  # Moscow
    return {"dealer": str(dealer), "to": day, "from": day - dt.timedelta(days=29), "leads": leads, "attempts": attempts}


def targets(data: dict, params: dict) -> dict[str, Target]:
    report = "/v3/reports/lead-response"
    month = f"date_from={params['from']}&date_to={params['to']}"
    return {
        "one dealership, 30 days, by day": Target("GET", [f"{report}?dealer_uuid={params['dealer']}&{month}"]),
        "one dealership, 30 days, by employee": Target(
            "GET", [f"{report}?dealer_uuid={params['dealer']}&{month}&group_by=employee"]
        ),
        "every dealership, 30 days, by dealer": Target("GET", [f"{report}?{month}&group_by=dealer"]),
        "one dealership, one day": Target(
            "GET", [f"{report}?dealer_uuid={params['dealer']}&date_from={params['to']}&date_to={params['to']}"]
        ),
        "baseline: GET one (full)": Target("GET", [f"/v2/communications/{u}" for u in data["uuids"]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--port", type=int, default=18320)
    parser.add_argument("--db", default="communications_bench_reports")
    parser.add_argument("--keep", action="store_true", help="keep the database(s)")
    parser.add_argument("--no-vacuum", action="store_true", help="measure right after the import, before autovacuum")
    args = parser.parse_args()
    args.deep = 50  # bench/load.py's deep cursor, unused here
    results: dict[int, dict[str, Result]] = {}
    leads_in: dict[int, dict[str, int]] = {}
    sizes: dict[int, dict] = {}
    for rows in args.rows:
        with Server(rows, args) as server:
            params = prepare(server)
            sizes[rows] = params
            results[rows], leads_in[rows] = {}, {}
            for name, target in targets(server.data, params).items():
                check(server.base, target, server.data["token"])
                if target.paths[0].startswith("/v3/reports/"):
                    headers = {"Authorization": f"Token {server.data['token']}"}
                    body = requests.get(server.base + target.paths[0], headers=headers, timeout=60).json()
                    leads_in[rows][name] = body["totals"]["leads"]
                runs = [run_wrk(server, target, server.data["token"], args) for _ in range(args.rounds)]
                results[rows][name] = best_of(runs)
                print(f"{rows:,} {name}: p50 {results[rows][name].p50:.1f} ms", file=sys.stderr, flush=True)
    small, *others = args.rows
    described = "; ".join(
        f"{r:,} rows: {sizes[r]['leads']:,} leads, {sizes[r]['attempts']:,} attempts" for r in args.rows
    )
    print(f"\n{header(args, 'lead response report by table size')}\n{described}\n")
    columns = " | ".join(f"{r:,}: leads in it | p50 ms | p99 ms" for r in args.rows)
    print(f"| request | {columns} | errors | p50 ratio to {small:,} | p50 / GET one's |")
    print("|" + " --- |" * (4 + 3 * len(args.rows)))
    ok = True
    for name in results[small]:
        row = [results[r][name] for r in args.rows]
        errors = sum(r.errors for r in row)
        ok = ok and errors == 0
        cells = " | ".join(
            f"{leads_in[rows][name]:,} | {r.p50:.1f} | {r.p99:.1f}"
            if name in leads_in[rows]
            else f"— | {r.p50:.1f} | {r.p99:.1f}"
            for rows, r in zip(args.rows, row, strict=True)
        )
        ratios = ", ".join(f"{results[r][name].p50 / row[0].p50:.2f}" for r in others)
        per_get = ", ".join(
            f"{results[r][name].p50 / results[r]['baseline: GET one (full)'].p50:.1f}" for r in args.rows
        )
        print(f"| {name} | {cells} | {errors} | **{ratios}** | {per_get} |", flush=True)
    print(json.dumps({str(r): {n: res.p50 for n, res in results[r].items()} for r in args.rows}), file=sys.stderr)
    if not ok:
        sys.exit("errors: every request must succeed")


if __name__ == "__main__":
    main()
