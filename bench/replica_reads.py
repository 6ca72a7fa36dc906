"""Benchmark: the list endpoint's throughput with reads routed to a replica, against no replica, same run.

    .venv/bin/python bench/replica_reads.py [--rows 2000] [--seconds 5] [--rounds 3]

Makes a throw-away primary and streaming replica on this machine (as the replica tests do), one
gunicorn worker per case, and measures `GET /v3/communications?page_size=50` with wrk (1 thread, 4
connections) three ways:
  1. baseline: no DATABASE_REPLICA_URL, everything on the primary;
  2. replica: reads on the replica (the routing, the lag check and one Redis GET per request);
  3. sticky: a user who just wrote, so reads go to the primary after the Redis GET.
Both servers share this machine's cores, so this measures the routing's cost, not a replica's gain.
Needs redis-server and PostgreSQL's server binaries.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from communications_project.tests.replica.pgpair import PgPair, free_port  # noqa: E402

SETUP = """
from django.contrib.auth.models import Permission, User
from credentials.services import api_key_create
from communications.tests.factories import CommunicationFactory
for name in ("reader", "writer"):
    user = User.objects.create(username=name)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="communications"))
    print(api_key_create(user=user, name='bench')[1])
print(user.pk)
CommunicationFactory.create_batch({rows})
"""


def wrk(url: str, token: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c4", f"-d{seconds}s", "-H", f"Authorization: Token {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def serve(env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "communications_project.wsgi", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    redis_dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    redis = subprocess.Popen(
        [shutil.which("redis-server"), "--port", "0", "--unixsocket", str(redis_dir / "redis.sock"), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    pair = PgPair()
    try:
        pair.start()
        base = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "communications_project.settings_test",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pair.primary_port}/{pair.dbname}",
            "REDIS_URL": f"unix://{redis_dir / 'redis.sock'}",
            "LOG_LEVEL": "WARNING",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=base, check=True)
        out = subprocess.run(
            [*manage, "shell", "-c", SETUP.format(rows=args.rows)], cwd=ROOT, env=base, check=True, capture_output=True
        )
        reader, writer, writer_id = out.stdout.decode().split()[-3:]
        pair.wait_for_replay()
        replica = {**base, "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{pair.replica_port}/{pair.dbname}"}
        # The writer's position, far ahead of any replica: its reads stay on the primary.
        subprocess.run(["redis-cli", "-s", str(redis_dir / "redis.sock"), "SET",
                        f"communications:written-lsn:{writer_id}", "9" * 20], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        cases = {"baseline": (base, reader), "replica": (replica, reader), "sticky": (replica, writer)}
        servers = {name: (free_port(), env) for name, (env, _) in cases.items()}
        running = [serve(env, port) for port, env in servers.values()]
        results = {name: [] for name in cases}
        try:
            for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits all three
                for name, (_, token) in cases.items():
                    url = f"http://127.0.0.1:{servers[name][0]}/v3/communications?page_size=50"
                    wrk(url, token, 1)  # warm-up
                    results[name].append(wrk(url, token, args.seconds))
        finally:
            for server in running:
                server.terminate()
                server.wait()
        baseline = statistics.median(results["baseline"])
        for name, runs in results.items():
            rps = statistics.median(runs)
            print(f"{name:9} {rps:8.1f} req/s (median of {len(runs)})  ratio to baseline {rps / baseline:.2f}")
    finally:
        pair.close()
        redis.terminate()
        shutil.rmtree(redis_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
