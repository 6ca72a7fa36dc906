"""The change feed read from a real streaming replica keeps its guarantee (docs/EVENTS.md).

On a hot standby, `pg_current_snapshot()` is built from the transactions the primary's WAL shows
still running, so its xmin holds back, as on the primary, every event a transaction still open on
the primary may yet be followed by. These tests read the feed on the replica while a transaction
on the primary stays open, then after it commits.
"""

import threading
import time

from django.contrib.auth.models import Permission
from django.db import connection, transaction
from rest_framework.test import APIClient

from communications import services
from communications.models import Kind, Source
from communications.tests.factories import CommunicationFactory, UserFactory
from credentials.services import api_key_create

from .conftest import Served

FEED = "/v3/communications/events"


def reader() -> APIClient:
    """A consumer of the feed that writes nothing (so read-your-writes never sends it to the primary)."""
    user = UserFactory()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="communications", codename="view_communicationevent")
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_create(user=user, name='tests')[1]}")
    return client


def read(client: APIClient, after: str | None) -> tuple[list[dict], str, Served]:
    with Served() as served:
        response = client.get(FEED, {"after": after} if after else {})
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"], body["next"], served


def test_the_feed_is_read_on_the_replica_and_an_open_primary_transaction_holds_it_back(pair):
    client = reader()
    a, b = CommunicationFactory(kind=Kind.PLANNED), CommunicationFactory(kind=Kind.PLANNED)
    pair.wait_for_replay()
    _, start, served = read(client, None)
    assert served.by == "replica"

    paused, go, errors = threading.Event(), threading.Event(), []

    def slow_writer():
        try:
            with transaction.atomic():
                services.communication_update(uuid=a.uuid, actor=None, source=Source.API, data={"subject": "A"})
                paused.set()
                go.wait(30)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert paused.wait(30)
    services.communication_update(uuid=b.uuid, actor=None, source=Source.API, data={"subject": "B"})
    pair.wait_for_replay()  # B's event is on the replica...
    assert pair.replica_sql(f"SELECT count(*) FROM communications_communicationevent WHERE subject = '{b.uuid}'") == (
        1,
    )
    held, after, served = read(client, start)
    assert (held, served.by) == ([], "replica")  # ...and not served while A may still commit before it

    go.set()
    thread.join(30)
    assert not errors
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        pair.wait_for_replay()
        events, after, served = read(client, after)
        seen += events
        assert served.by == "replica"
    assert [(e["subject"], e["data"]["communication"]["subject"]) for e in seen] == [
        (str(a.uuid), "A"),
        (str(b.uuid), "B"),
    ]
