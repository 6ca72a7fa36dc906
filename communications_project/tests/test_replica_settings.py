"""DATABASE_REPLICA_URL's settings (SPEC §9); the replica itself is tested in replica/."""

import pytest
from django.db import connections

from communications_project import db

from .test_health_and_settings import _manage

REPLICA_URL = "postgres://app@replica.example:5432/communications"
PRODUCTION_LIKE = {"SECRET_KEY": "k" * 50, "DATABASE_URL": "postgres://app@db.example:5432/communications"}


def test_a_replica_without_redis_stops_start_up():
    result = _manage(
        "check", DATABASE_REPLICA_URL="postgres://app@replica.example:5432/communications", **PRODUCTION_LIKE
    )
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL needs REDIS_URL" in result.stderr


def test_a_replica_needs_postgresql():
    result = _manage(
        "check",
        DATABASE_REPLICA_URL="sqlite:///replica.sqlite3",
        REDIS_URL="redis://127.0.0.1:6379/0",
        **{**PRODUCTION_LIKE, "DATABASE_URL": "sqlite:///:memory:"},
    )
    assert result.returncode != 0
    assert "needs PostgreSQL for both" in result.stderr


def test_a_replica_with_redis_passes_the_checks():
    result = _manage(
        "check",
        DATABASE_REPLICA_URL=REPLICA_URL,
        REDIS_URL="redis://127.0.0.1:6379/0",
        **PRODUCTION_LIKE,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_without_a_replica_every_read_is_on_the_primary_and_redis_is_never_asked(api, settings):
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    db.POSITIONS.reset()
    assert not db.replica_configured() and db.REPLICA not in connections.settings
    assert db.read_alias(api.user) == "default"
    assert api.get("/v3/communications").status_code == 200
    assert api.post("/v2/communications", {}, format="json").status_code == 400
    assert db.POSITIONS._client is None
