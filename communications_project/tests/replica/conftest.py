"""The replica tests run against a real streaming replica (pgpair.py) and a private Redis.

For this directory's tests Django's `default` alias points at the pair's primary and `replica` at
its replica; both are put back as they were afterwards. The tests commit (replication needs it):
they use fresh users and clients, and the whole pair is thrown away at the end. Without
PostgreSQL's server binaries or redis-server they skip, unless REQUIRE_REPLICA is set (CI), where
that is a failure.
"""

import contextlib
import os
import shutil
import subprocess
import time

import pytest
import redis
from django.core.management import call_command
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, reset_queries
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from communications_project import db
from conftest import AUTH_QUERIES

from .pgpair import PgPair, missing


def _cannot(reason: str):
    if os.environ.get("REQUIRE_REPLICA"):
        pytest.fail(f"REQUIRE_REPLICA is set, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        _cannot("redis-server is not installed")
    directory = tmp_path_factory.mktemp("redis")
    sock = directory / "redis.sock"
    server = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                break
        time.sleep(0.05)
    yield url
    client.close()
    server.terminate()
    server.wait(timeout=10)


@contextlib.contextmanager
def _pointed_at(pair: PgPair):
    default = connections[DEFAULT_DB_ALIAS]
    saved = dict(default.settings_dict)
    saved_replica = connections.settings.get(db.REPLICA)
    connections.close_all()
    default.settings_dict.update(HOST="127.0.0.1", PORT=str(pair.primary_port), NAME=pair.dbname, USER="postgres")
    default.settings_dict["PASSWORD"] = ""
    connections.settings[db.REPLICA] = {
        **default.settings_dict,
        "PORT": str(pair.replica_port),
        "OPTIONS": {**default.settings_dict["OPTIONS"], "connect_timeout": 2},
        "TEST": {**default.settings_dict["TEST"], "MIRROR": DEFAULT_DB_ALIAS},
    }
    try:
        yield
    finally:
        connections.close_all()
        with contextlib.suppress(AttributeError):
            del connections[db.REPLICA]
        del connections.settings[db.REPLICA]
        if saved_replica is not None:
            connections.settings[db.REPLICA] = saved_replica
        default.settings_dict.clear()
        default.settings_dict.update(saved)
        db.HEALTH.reset()
        db.POSITIONS.reset()


@pytest.fixture(scope="module")
def pair(django_db_blocker, redis_url):
    reason = missing()
    if reason:
        _cannot(reason)
    pair = PgPair()
    try:
        pair.start()
        settings = override_settings(REDIS_URL=redis_url, REPLICA_CHECK_SECONDS=0, REPLICA_MAX_LAG_SECONDS=3600)
        with django_db_blocker.unblock(), _pointed_at(pair), settings:
            call_command("migrate", verbosity=0, interactive=False)
            pair.wait_for_replay()
            yield pair
    finally:
        pair.close()


@pytest.fixture(autouse=True)
def _healthy(pair):
    """Each test starts with the replica running, replaying, caught up, and not yet checked."""
    pair.ensure_running()
    pair.wait_for_replay()
    db.HEALTH.reset()
    db.POSITIONS.reset()


@contextlib.contextmanager
def without_replica():
    """As if DATABASE_REPLICA_URL were unset."""
    replica = connections.settings.pop(db.REPLICA)
    try:
        yield
    finally:
        connections.settings[db.REPLICA] = replica


class _Capture(CaptureQueriesContext):
    """Django's, which connects first: this one also works while the server is down."""

    def __enter__(self):
        with contextlib.suppress(DatabaseError):
            return super().__enter__()
        self.initial_queries, self.final_queries = len(self.connection.queries_log), None
        request_started.disconnect(reset_queries)
        return self


HEALTH_CHECKS = ("pg_is_in_recovery()", "pg_current_wal_lsn()")


class Served:
    """Which server answered the reads of a block: the SQL each ran, health checks left out."""

    def __enter__(self):
        self._captures = [_Capture(connections[alias]) for alias in (DEFAULT_DB_ALIAS, db.REPLICA)]
        for capture in self._captures:
            capture.__enter__()
        return self

    def __exit__(self, *exc):
        for capture in self._captures:
            capture.__exit__(*exc)
        self.primary, self.replica = (
            [q["sql"] for q in capture.captured_queries if not any(check in q["sql"] for check in HEALTH_CHECKS)]
            for capture in self._captures
        )

    @property
    def by(self) -> str:
        """`replica` if it served every read (the primary only authenticated), `primary` if it served none."""
        if not self.replica:
            return "primary"
        return "replica" if len(self.primary) <= AUTH_QUERIES else "both"
