"""Reads on a real streaming replica (SPEC §9): routed, lag-aware, read-your-writes, never an error.

Replay paused on the replica (`pg_wal_replay_pause()`) is how a test tells the servers apart: a
row written since is on the primary only.
"""

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
from django.contrib.auth.models import Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Communication, CommunicationHistory, Status
from communications.tests.factories import UserFactory
from communications_project import db
from conftest import ALL_COMMUNICATION_PERMS, AUTH_QUERIES
from credentials.authentication import LAST_USE
from credentials.services import api_key_create
from dicts import selectors as dict_selectors
from id_translations.models import IdTranslation

from .conftest import Served, without_replica
from .pgpair import free_port

ROOT = Path(__file__).resolve().parents[3]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

PERMS = (*ALL_COMMUNICATION_PERMS, "id_translations.view_idtranslation")


def make_api() -> APIClient:
    """A token client for a new user holding every permission the reads and writes need."""
    user = UserFactory()
    for perm in PERMS:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    api = APIClient()
    api.authorization = f"Token {api_key_create(user=user, name='tests')[1]}"
    api.credentials(HTTP_AUTHORIZATION=api.authorization)
    api.user = user
    return api


def create(api: APIClient, **overrides) -> dict:
    body = {
        "method": "call",
        "kind": "planned",
        "direction": "outbound",
        "client_uuid": str(uuid.uuid4()),
        "subject": "Пригласить на тест-драйв",
        "details": {"phone": "+79161234567"},
        "date_planned_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        **overrides,
    }
    response = api.post("/v2/communications", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def listed(api: APIClient, client_uuid: str) -> tuple[list[str], Served]:
    with Served() as served:
        response = api.get("/v3/communications", {"client_uuid": client_uuid})
    assert response.status_code == 200, response.content
    return [row["uuid"] for row in response.json()["results"]], served


def readyz(client) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content  # the replica's state never fails readiness
    return response.json()


def test_with_replay_paused_others_read_the_replica_and_the_writer_reads_its_own_write(pair):
    writer, reader = make_api(), make_api()
    client_uuid = str(uuid.uuid4())
    pair.pause()
    created = create(writer, client_uuid=client_uuid)

    # Another user's list comes from the replica, which has not replayed the write.
    rows, served = listed(reader, client_uuid)
    assert rows == [] and served.by == "replica"
    # The writer's own list comes from the primary until the replica has replayed past the write.
    rows, served = listed(writer, client_uuid)
    assert rows == [created["uuid"]] and served.by == "primary"

    # Anyone's read of that one communication misses on the replica and is answered by the primary.
    path = f"/v2/communications/{created['uuid']}"
    with Served() as served:
        response = reader.get(path, {"include": "history"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["uuid"], body["status"], body["created_by"]) == (created["uuid"], "created", writer.user.username)
    assert [(h["action"], h["actor"]) for h in body["history"]] == [("create", writer.user.username)]
    assert served.by == "both" and len(served.replica) == 1  # one miss on the replica, the rest on the primary
    response = reader.get(f"{path}/primary-info")
    assert response.status_code == 200 and response.json()["uuid"] == created["uuid"]
    response = reader.get(f"{path}/history")
    assert response.status_code == 200 and [h["action"] for h in response.json()] == ["create"]

    pair.resume()
    pair.wait_for_replay()
    rows, served = listed(reader, client_uuid)
    assert rows == [created["uuid"]] and served.by == "replica"
    rows, served = listed(writer, client_uuid)
    assert rows == [created["uuid"]] and served.by == "replica"  # caught up: the writer is back on the replica


def test_an_unknown_communication_is_404_after_asking_both(pair):
    api = make_api()
    with Served() as served:
        response = api.get(f"/v2/communications/{uuid.uuid4()}")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "not_found"
    assert served.by == "both"


@pytest.mark.parametrize("replica", ["paused", "stopped"])
def test_writes_and_transitions_answer_from_the_primary_while_the_replica_is(pair, replica):
    writer = make_api()
    pair.pause() if replica == "paused" else pair.stop_replica()

    planned = create(writer)
    assert (planned["status"], planned["version"]) == ("created", 1)
    path = f"/v2/communications/{planned['uuid']}"
    response = writer.patch(path, {"subject": "Новая тема"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200 and response["ETag"] == '"2"'
    assert (response.json()["subject"], response.json()["version"]) == ("Новая тема", 2)
    response = writer.patch(f"{path}/start", {}, format="json", HTTP_IF_MATCH='"2"')
    assert response.status_code == 200 and (response.json()["status"], response.json()["version"]) == ("in_work", 3)
    response = writer.patch(f"{path}/close", {"result": "Записан на ТО"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["result"], response.json()["version"]) == (
        "done",
        "Записан на ТО",
        4,
    )
    # The writer reads its own writes at once.
    response = writer.get(path)
    assert response.status_code == 200 and (response.json()["status"], response["ETag"]) == ("done", '"4"')

    cancelled = create(writer)
    response = writer.post(
        f"/v2/communications/{cancelled['uuid']}/cancel", {"cancel_reason": "Передумал"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    failed = create(writer, kind="actual", date_planned_start=None)
    assert failed["status"] == "in_work"
    response = writer.patch(f"/v2/communications/{failed['uuid']}/failed", {"fail_reason": "busy"}, format="json")
    assert response.status_code == 200 and (response.json()["status"], response.json()["fail_reason"]) == (
        "failed",
        "busy",
    )
    deleted = create(writer)
    assert writer.delete(f"/v2/communications/{deleted['uuid']}").status_code == 204
    assert writer.get(f"/v2/communications/{deleted['uuid']}").status_code == 404

    # The rows and their history, on the primary.
    rows = {str(c.uuid): c for c in Communication.objects.filter(created_by=writer.user)}
    assert rows[planned["uuid"]].status == Status.DONE and rows[planned["uuid"]].subject == "Новая тема"
    assert rows[cancelled["uuid"]].status == Status.CANCELLED
    assert rows[failed["uuid"]].status == Status.FAILED
    history = CommunicationHistory.objects.filter(communication=rows[planned["uuid"]]).order_by("id")
    assert [(h.action, h.transition) for h in history] == [
        ("create", ""),
        ("update", ""),
        ("transition", "start"),
        ("transition", "close"),
    ]


READS = [
    ("list", "get", "/v3/communications?client_uuid={client_uuid}", None),
    ("list, full view", "get", "/v3/communications?view=full&client_uuid={client_uuid}", None),
    ("one", "get", "/v2/communications/{uuid}", None),
    ("one with history", "get", "/v2/communications/{uuid}?include=history", None),
    ("primary info", "get", "/v2/communications/{uuid}/primary-info", None),
    ("history", "get", "/v2/communications/{uuid}/history", None),
    ("collection", "post", "/v3/collections/communications", {"uuids": ["{uuid}", "{missing}"], "view": "full"}),
    ("id translations", "get", "/v1/communications/id-translations?flora_uuid={uuid}&oracle_id={oracle_id}", None),
    ("methods", "get", "/v2/dicts/communications-methods", None),
]


@pytest.fixture
def seeded(pair):
    """A communication with a transition and an ID translation, replayed on the replica."""
    api = make_api()
    created = create(api)
    assert api.patch(f"/v2/communications/{created['uuid']}/start", {}, format="json").status_code == 200
    oracle_id = IdTranslation.objects.count() + 1
    IdTranslation.objects.create(flora_uuid=created["uuid"], oracle_id=oracle_id)
    pair.wait_for_replay()
    return {
        "uuid": created["uuid"],
        "client_uuid": created["client_uuid"],
        "oracle_id": oracle_id,
        "missing": str(uuid.uuid4()),
    }


def read(api: APIClient, method: str, path: str, data: dict | None, values: dict):
    dict_selectors.forget()  # each process keeps the methods dictionary: make this read load it
    LAST_USE.forget()  # and which keys it marked used this minute: make this read's SQL the same every time
    path = path.format(**values)
    if data is None:
        return getattr(api, method)(path)
    body = {
        key: [v.format(**values) for v in value] if isinstance(value, list) else value for key, value in data.items()
    }
    return getattr(api, method)(path, body, format="json")


def assert_answer(name: str, response, values: dict) -> None:
    """Each read's body, so that an answer from the wrong place or an empty one fails."""
    assert response.status_code == 200, (name, response.content)
    body = response.json()
    if name.startswith("list"):
        assert [(row["uuid"], row["status"]) for row in body["results"]] == [(values["uuid"], "in_work")]
    elif name == "one with history":
        assert [h["transition"] for h in body["history"]] == ["", "start"]
    elif name in ("one", "primary info"):
        assert (body["uuid"], body["status"]) == (values["uuid"], "in_work")
    elif name == "history":
        assert [h["action"] for h in body] == ["create", "transition"]
    elif name == "collection":
        assert [row["uuid"] for row in body["results"]] == [values["uuid"]]
        assert body["not_found"] == [values["missing"]]
    elif name == "id translations":
        assert body["results"] == [{"flora_uuid": values["uuid"], "oracle_id": values["oracle_id"]}]
    elif name == "methods":
        assert "call" in [m["code"] for m in body]


def test_every_read_is_served_by_the_replica_at_the_same_number_of_queries(pair, seeded, settings):
    api = make_api()
    settings.REPLICA_CHECK_SECONDS = 60
    for name, method, path, data in READS:
        with without_replica(), CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as alone:
            assert_answer(name, read(api, method, path, data, seeded), seeded)
        assert db.HEALTH.current().state == db.OK
        with Served() as served:
            assert_answer(name, read(api, method, path, data, seeded), seeded)
        # The very same SQL as without a replica: authentication on the primary, the rest on the replica.
        alone = [q["sql"] for q in alone.captured_queries]
        assert served.by == "replica", name
        assert served.primary + served.replica == alone, name


def test_the_replica_is_checked_at_most_once_per_interval(pair, seeded, settings):
    api = make_api()
    settings.REPLICA_CHECK_SECONDS = 60
    with CaptureQueriesContext(connections[db.REPLICA]) as on_replica:
        for _ in range(3):
            assert api.get(f"/v2/communications/{seeded['uuid']}").status_code == 200
    checks = [q for q in on_replica.captured_queries if "pg_is_in_recovery()" in q["sql"]]
    assert len(checks) == 1 and len(on_replica.captured_queries) == 4


def test_with_the_replica_stopped_every_read_answers_from_the_primary(pair, seeded, settings, client, caplog):
    api = make_api()
    pair.wait_for_replay()
    settings.REPLICA_CHECK_SECONDS = 60
    assert readyz(client) == {"status": "ok", "replica": {"state": "ok", "lag_seconds": 0.0}}
    caplog.set_level(logging.INFO, logger="communications_project.db")
    caplog.clear()
    pair.stop_replica()  # the last check said ok: the first read finds out by failing, and is retried

    for name, method, path, data in READS:
        with Served() as served:
            assert_answer(name, read(api, method, path, data, seeded), seeded)
        with without_replica(), CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as alone:
            read(api, method, path, data, seeded)
        assert served.primary == [q["sql"] for q in alone.captured_queries], name  # all of it, on the primary
    assert readyz(client) == {
        "status": "ok",
        "replica": {"state": "unreachable", "lag_seconds": None, "detail": "OperationalError"},
    }
    settings.REPLICA_CHECK_SECONDS = 0  # every read checks again, still unreachable: logged once
    assert_answer("one", read(api, "get", "/v2/communications/{uuid}", None, seeded), seeded)
    assert readyz(client)["replica"]["state"] == "unreachable"

    pair.start_replica()
    pair.wait_for_replay()
    assert readyz(client)["replica"] == {"state": "ok", "lag_seconds": 0.0}
    with Served() as served:
        assert_answer("list", read(api, "get", READS[0][2], None, seeded), seeded)
    assert served.by == "replica"
    records = [r for r in caplog.records if r.name == "communications_project.db"]
    assert [(r.levelname, r.getMessage().split(" (")[0].split(":")[0]) for r in records] == [
        ("WARNING", "replica unreachable"),
        ("INFO", "replica ok"),
    ]


def test_a_replica_out_of_recovery_is_not_read(pair, seeded, client):
    """After a failover the old replica is a primary of its own: its data would drift from ours."""
    api = make_api()
    replica = connections[db.REPLICA]
    replica.close()
    replica.settings_dict["PORT"] = str(pair.primary_port)
    try:
        assert readyz(client)["replica"] == {"state": "unreachable", "lag_seconds": None, "detail": "not in recovery"}
        with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary:
            assert_answer("list", read(api, "get", READS[0][2], None, seeded), seeded)
        assert len(on_primary) > AUTH_QUERIES
    finally:
        replica.close()
        replica.settings_dict["PORT"] = str(pair.replica_port)


def test_lag_over_the_limit_sends_reads_to_the_primary(pair, settings, client):
    writer, reader = make_api(), make_api()
    client_uuid = str(uuid.uuid4())
    pair.pause()
    created = create(writer, client_uuid=client_uuid)
    rows, served = listed(reader, client_uuid)
    assert rows == [] and served.by == "replica"  # behind, but within the limit (an hour here)

    settings.REPLICA_MAX_LAG_SECONDS = 0.5
    deadline = time.monotonic() + 10
    while (state := readyz(client)["replica"])["state"] != "lagging":
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["lag_seconds"] > 0.5
    rows, served = listed(reader, client_uuid)
    assert rows == [created["uuid"]] and served.by == "primary"

    pair.resume()
    pair.wait_for_replay()
    assert readyz(client)["replica"] == {"state": "ok", "lag_seconds": 0.0}
    rows, served = listed(reader, client_uuid)
    assert rows == [created["uuid"]] and served.by == "replica"


def test_a_write_keeps_the_writers_position_in_redis_with_an_expiry(pair, settings):
    writer, reader = make_api(), make_api()
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
        before = int(cursor.fetchone()[0])
    created = create(writer)
    assert reader.get(f"/v2/communications/{created['uuid']}").status_code == 200  # a read keeps nothing

    positions = redis.Redis.from_url(settings.REDIS_URL)
    written = positions.get(f"communications:written-lsn:{writer.user.pk}")
    assert written is not None and int(written) > before
    assert 0 < positions.ttl(f"communications:written-lsn:{writer.user.pk}") <= db.positions_ttl()
    assert positions.get(f"communications:written-lsn:{reader.user.pk}") is None


def test_a_position_only_ever_moves_forward(pair):
    db.POSITIONS.remember(999_999, 500)
    db.POSITIONS.remember(999_999, 400)  # a parallel write of the same user that finished first
    assert db.POSITIONS.get(999_999) == 500
    db.POSITIONS.remember(999_999, 600)
    assert db.POSITIONS.get(999_999) == 600


def test_without_redis_users_read_from_the_primary_and_writes_still_work(pair, settings, caplog):
    writer, reader = make_api(), make_api()
    client_uuid = str(uuid.uuid4())
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    caplog.set_level(logging.INFO, logger="communications_project.db")
    pair.pause()
    created = create(writer, client_uuid=client_uuid)
    rows, served = listed(reader, client_uuid)
    assert rows == [created["uuid"]] and served.by == "primary"  # nobody's last write is known: the primary
    rows, served = listed(writer, client_uuid)
    assert rows == [created["uuid"]] and served.by == "primary"
    records = [r for r in caplog.records if r.name == "communications_project.db" and "Redis" in r.getMessage()]
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in records] == [("WARNING", "Redis unreachable")]


def test_an_id_translation_written_is_read_back_by_its_writer_only(pair):
    writer, reader = make_api(), make_api()
    writer.user.user_permissions.add(Permission.objects.get(codename="add_idtranslation"))
    flora_uuid, oracle_id = str(uuid.uuid4()), IdTranslation.objects.count() + 1000
    pair.pause()
    response = writer.post(
        "/v1/communications/id-translations", {"flora_uuid": flora_uuid, "oracle_id": oracle_id}, format="json"
    )
    assert response.status_code == 201, response.content
    for api, expected in ((writer, [{"flora_uuid": flora_uuid, "oracle_id": oracle_id}]), (reader, [])):
        response = api.get("/v1/communications/id-translations", {"flora_uuid": flora_uuid})
        assert response.status_code == 200 and response.json()["results"] == expected


@pytest.fixture
def two_processes(pair, redis_url):
    """Two separate servers on the pair, as two application machines would be."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "communications_project.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pair.primary_port}/{pair.dbname}",
        "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{pair.replica_port}/{pair.dbname}",
        "REDIS_URL": redis_url,
        "REPLICA_MAX_LAG_SECONDS": "3600",
    }
    servers, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "gunicorn"),
                        "communications_project.wsgi",
                        "-b",
                        f"127.0.0.1:{port}",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{url}/healthz", timeout=5)
                    break
                except requests.RequestException:
                    assert time.monotonic() < deadline, f"{url} did not start"
                    time.sleep(0.1)
        yield urls
    finally:
        for server in servers:
            server.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            server.wait(timeout=10)


def test_a_write_through_one_process_is_read_back_through_another(pair, two_processes):
    first, second = two_processes
    writer, reader = make_api(), make_api()
    client_uuid = str(uuid.uuid4())
    pair.pause()
    response = requests.post(
        f"{first}/v2/communications",
        json={
            "method": "call",
            "kind": "actual",
            "direction": "inbound",
            "client_uuid": client_uuid,
            "details": {"phone": "+79161234567"},
        },
        headers={"Authorization": writer.authorization},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    def listed_by(api) -> list[str]:
        response = requests.get(
            f"{second}/v3/communications",
            params={"client_uuid": client_uuid},
            headers={"Authorization": api.authorization},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return [row["uuid"] for row in response.json()["results"]]

    assert listed_by(writer) == [response.json()["uuid"]]  # the second process knows of the write
    assert listed_by(reader) == []  # and serves others from the paused replica
