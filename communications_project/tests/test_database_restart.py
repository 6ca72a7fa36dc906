"""The fault test: PostgreSQL restarted under steady writes, against a real gunicorn.

A throwaway cluster of our own (initdb into a temporary directory, its own port: the machine's
PostgreSQL is never touched), gunicorn with production settings and two workers, four client
threads creating communications with Idempotency-Keys and retrying 503s with the same key as a
real client would; `pg_ctl restart -m fast` in the middle. Then: no 500; every 5xx is 503
database_unavailable in the standard shape with Retry-After; the rows stored are exactly the
creates the clients were told succeeded; requests sent after the restart succeed (the broken
persistent connections were dropped, not reused); /metrics adds up both workers.

Needs PostgreSQL's server binaries (Debian's postgresql package). Skipped without them, unless
REQUIRE_DB_FAULT is set (CI sets it), where their absence fails the run.
"""

import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
AVAILABLE = PG_BIN is not None and (not AS_POSTGRES or shutil.which("runuser") is not None)

pytestmark = pytest.mark.skipif(
    not AVAILABLE and not os.environ.get("REQUIRE_DB_FAULT"),
    reason="PostgreSQL server binaries (initdb, pg_ctl) are not installed",
)

CLIENTS = 4
BEFORE_RESTART = 2.5  # seconds of steady writes before the restart
AFTER_RESTART = 3.0  # and after it
# A client stops retrying one key after this long, so the test stays bounded. A create cut off
# by the restart after its key was claimed answers 409 in flight until a retry takes the orphaned
# claim over (communications_project/idempotency.py, 2 s); every key must be resolved by then.
GIVE_UP_AFTER = 5.0
METRICS_TOKEN = "fault-test-metrics-token"
TOKEN = "f" * 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60, **kwargs)


@dataclass
class Cluster:
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def pg_ctl(self, *args: str) -> None:
        # -l: the server's output goes to a file, not to a pipe pg_ctl's caller would wait on.
        log = str(self.directory / "postgres.log")
        _run(*AS_POSTGRES, f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "30", *args)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")  # one cluster and one server for the module's two tests
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="comm-fault-"))
    if AS_POSTGRES:
        shutil.chown(directory, "postgres", "postgres")
    cluster = Cluster(directory, _free_port())
    _run(*AS_POSTGRES, f"{PG_BIN}/initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {cluster.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        cluster.pg_ctl("-o", options, "start")
        yield cluster
    finally:
        subprocess.run(
            [*AS_POSTGRES, f"{PG_BIN}/pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


def _production_env(database_url: str, metrics_dir: str) -> dict[str, str]:
    # pytest's settings (settings_test.py) put test values into this process's environment.
    ours = ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "STATICFILES_BACKEND")
    env = {key: value for key, value in os.environ.items() if key not in ours}
    return {
        **env,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "fault-test-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_RETRY_AFTER": "1",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "CONN_MAX_AGE": "600",  # persistent connections: the restart breaks them under the workers
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def server(cluster):
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as connection:
        connection.execute("CREATE DATABASE communications")
    metrics_dir = str(cluster.directory / "metrics")
    env = _production_env(cluster.url("communications"), metrics_dir)
    _run(sys.executable, "manage.py", "migrate", "--noinput", "-v0", cwd=ROOT, env=env)
    with psycopg.connect(cluster.url("communications"), autocommit=True) as connection:
        user_id = connection.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined) VALUES ('!', true, 'fault', '', '', '', false, true, now()) RETURNING id"
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO credentials_apikey (user_id, name, prefix, key_hash, date_created)"
            " VALUES (%s, 'fault', %s, %s, now())",
            (user_id, TOKEN[:8], hashlib.sha256(TOKEN.encode()).hexdigest()),
        )

    port = _free_port()
    log = open(cluster.directory / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "communications_project.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (cluster.directory / "gunicorn.log").read_text()
            time.sleep(0.1)
        yield base, cluster, cluster.directory / "gunicorn.log"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)  # uuids the clients were told were created
    answers: list[tuple[float, int, dict, dict]] = field(default_factory=list)  # (sent at, status, body, headers)
    unresolved: int = 0  # keys a client gave up on (never told "created")
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(base: str, stop: threading.Event, outcome: Outcome) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {TOKEN}"
    while not stop.is_set():
        key = str(uuid.uuid4())
        body = {"method": "visit", "kind": "actual", "direction": "inbound", "client_uuid": str(uuid.uuid4())}
        first_try = time.monotonic()
        while True:
            sent = time.monotonic()
            try:
                response = session.post(f"{base}/v2/communications", json=body, headers={"Idempotency-Key": key},
                                        timeout=10)  # fmt: skip
            except requests.ConnectionError:
                time.sleep(0.2)
                continue
            try:
                answer = response.json()
            except ValueError:
                answer = {"not_json": response.text[:200]}
            with outcome.lock:
                outcome.answers.append((sent, response.status_code, answer, dict(response.headers)))
            if response.status_code in (200, 201):
                with outcome.lock:
                    outcome.created.append(answer["uuid"])
                break
            retryable = response.status_code == 503 or (
                response.status_code == 409 and answer["errors"][0]["code"] == "idempotency_request_in_flight"
            )
            if not retryable or time.monotonic() - first_try > GIVE_UP_AFTER:
                with outcome.lock:
                    outcome.unresolved += 1
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))


def _metric_sum(base: str, name: str, **labels: str) -> float:
    text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_a_database_restart_under_writes_is_503_then_recovers_without_losing_or_doubling_a_row(server):
    base, cluster, server_log = server
    outcome = Outcome()
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(base, stop, outcome)) for _ in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(BEFORE_RESTART)
    restart_began = time.monotonic()
    cluster.pg_ctl("-m", "fast", "restart")
    back = time.monotonic()
    time.sleep(AFTER_RESTART)
    stop.set()
    for thread in threads:
        thread.join(timeout=GIVE_UP_AFTER + 15)
    finished = time.monotonic()
    assert not any(thread.is_alive() for thread in threads)

    statuses = [status for _, status, _, _ in outcome.answers]
    unavailable = [(sent, body, headers) for sent, status, body, headers in outcome.answers if status == 503]
    in_flight = [sent for sent, status, _, _ in outcome.answers if status == 409]
    with psycopg.connect(cluster.url("communications")) as connection:
        stored = [str(row[0]) for row in connection.execute("SELECT uuid FROM communications_communication")]
    first_created_after = min((sent for sent, status, _, _ in outcome.answers if status == 201 and sent >= back),
                              default=None)  # fmt: skip
    numbers = {
        "seconds": round(finished - started, 1),
        "restart_seconds": round(back - restart_began, 2),
        "requests": len(statuses),
        "created": len(outcome.created),
        "stored": len(stored),
        "status_503": len(unavailable),
        "status_409_in_flight": len(in_flight),
        "status_500": statuses.count(500),
        "unresolved_keys": outcome.unresolved,
        "first_201_after_restart_s": None if first_created_after is None else round(first_created_after - back, 3),
    }
    print("\nfault test:", json.dumps(numbers))

    assert 500 not in statuses, numbers
    assert set(statuses) <= {201, 503, 409}, numbers
    assert unavailable, f"the restart was not noticed: {numbers}"
    for _, body, headers in unavailable:
        assert body == {
            "type": "server_error",
            "errors": [
                {"code": "database_unavailable", "detail": "The database is unavailable; retry shortly.", "attr": None}
            ],
        }
        assert headers["Retry-After"] == "1" and headers["Content-Type"] == "application/json"
    assert outcome.unresolved == 0, numbers  # every client was told its create succeeded
    # Nothing lost, nothing doubled: exactly the rows the clients were told about.
    assert len(set(outcome.created)) == len(outcome.created)
    assert sorted(stored) == sorted(outcome.created), numbers
    # Recovery by itself: a request sent once the server is back finds a working connection.
    assert [sent for sent, _, _ in unavailable if sent > back + 0.1] == [], numbers
    assert first_created_after is not None
    # Both workers' samples are added up: every answer the clients got was counted once.
    counted = _metric_sum(base, "communications_http_requests_total", method="POST", route="/v2/communications")
    assert counted == len(statuses), numbers
    assert _metric_sum(base, "communications_database_errors_total") >= len(unavailable)
    assert "Traceback" not in server_log.read_text()


def test_connections_broken_while_idle_are_replaced_before_use(server):
    """The workers' persistent connections die in a restart nobody saw: the next requests must not
    get them (CONN_HEALTH_CHECKS checks a reused connection before the request uses it)."""
    base, cluster, _ = server
    session = requests.Session()
    session.headers["Authorization"] = f"Token {TOKEN}"

    def statuses(count: int) -> list[int]:
        return [session.get(f"{base}/v3/communications?page_size=1", timeout=10).status_code for _ in range(count)]

    assert set(statuses(10)) == {200}  # every worker now holds a connection
    cluster.pg_ctl("-m", "fast", "restart")
    assert statuses(10) == [200] * 10
