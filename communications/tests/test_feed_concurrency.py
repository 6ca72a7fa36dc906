"""The hole the change feed closes, tried as an integrator would (issue 16).

Writers change communications through the real HTTP server while others hold their transactions
open a little (as a slow request, an import batch or an admin page does); a consumer follows
`GET /v3/communications/events` all along, and the relay publishes to RabbitMQ. Afterwards the
consumer's last version of every communication is its stored version, every event was seen once
and in order of position, and every event id reached the queue. Polling `date_updated_after`, or a
feed ordered by a value taken before commit, loses some of these (the late committers).
"""

import random
import threading
import time

import pytest
import requests
from django.db import connection, transaction

from communications import services
from communications.models import Communication, CommunicationEvent, Kind, Source

from .factories import CommunicationFactory
from .feed import FEED, FEED_PERMS, validate
from .test_relay import RelayThread

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

COMMUNICATIONS = 60
HTTP_WRITERS = 6
SLOW_WRITERS = 2
WRITE_SECONDS = 8.0
CATCH_UP_SECONDS = 90.0  # a deadline for a busy machine


def test_concurrent_writers_and_a_feed_consumer_nothing_is_skipped_and_last_versions_match(
    live_server, user_with_perms, api_key_for, exchange, queue
):
    user = user_with_perms("communications.change_communication", "communications.view_communication", *FEED_PERMS)
    token = api_key_for(user)
    made = [str(c.uuid) for c in CommunicationFactory.create_batch(COMMUNICATIONS, kind=Kind.PLANNED)]
    stop_writing = threading.Event()
    stop_reading = threading.Event()
    failures: list[str] = []
    writes = {"http": 0, "slow": 0}
    lock = threading.Lock()

    def session() -> requests.Session:
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        return http

    def http_writer(seed: int) -> None:
        rng, http = random.Random(seed), session()
        while not stop_writing.is_set():
            uuid = rng.choice(made)
            answer = http.patch(
                f"{live_server.url}/v2/communications/{uuid}", json={"comment": f"{seed}-{rng.random()}"}, timeout=30
            )
            if answer.status_code != 200:
                failures.append(f"PATCH {answer.status_code} {answer.text[:200]}")
                return
            with lock:
                writes["http"] += 1

    def slow_writer(seed: int) -> None:
        """A transaction that stays open after its write while others commit past it."""
        rng = random.Random(seed)
        try:
            while not stop_writing.is_set():
                with transaction.atomic():
                    services.communication_update(
                        uuid=rng.choice(made), actor=None, source=Source.ADMIN, data={"result": str(rng.random())}
                    )
                    time.sleep(rng.uniform(0.005, 0.05))
                with lock:
                    writes["slow"] += 1
        except Exception as error:  # reported by the test
            failures.append(repr(error))
        finally:
            connection.close()

    seen: list[dict] = []
    polls = {"during_writes": 0}

    def consumer() -> None:
        http, after = session(), None
        while not stop_reading.is_set():
            answer = http.get(f"{live_server.url}{FEED}", params={"after": after} if after else {}, timeout=30)
            if answer.status_code != 200:
                failures.append(f"GET feed {answer.status_code} {answer.text[:200]}")
                return
            body = answer.json()
            seen.extend(body["results"])
            after = body["next"]
            if not stop_writing.is_set():
                polls["during_writes"] += 1
            if not body["has_more"]:
                time.sleep(0.005)

    threads = [threading.Thread(target=http_writer, args=(n,)) for n in range(HTTP_WRITERS)]
    threads += [threading.Thread(target=slow_writer, args=(100 + n,)) for n in range(SLOW_WRITERS)]
    reader = threading.Thread(target=consumer)
    with RelayThread(exchange, batch=200):
        reader.start()
        for thread in threads:
            thread.start()
        time.sleep(WRITE_SECONDS)
        stop_writing.set()
        for thread in threads:
            thread.join(60)
        total = CommunicationEvent.objects.count()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while len(seen) < total and time.monotonic() < deadline and reader.is_alive():
            time.sleep(0.1)
        stop_reading.set()
        reader.join(60)
        delivered = queue.take_ids(
            {str(event_id) for event_id in CommunicationEvent.objects.values_list("event_id", flat=True)},
            timeout=CATCH_UP_SECONDS,
        )

    assert not failures, failures[:5]
    assert writes["http"] > 100 and writes["slow"] > 20 and polls["during_writes"] > 50, (writes, polls)
    assert total == writes["http"] + writes["slow"]  # one event per change
    # Each event once, in order of position: a consumer never met a position at or before its cursor.
    sequences = [event["sequence"] for event in seen]
    assert sequences == sorted(set(sequences)), "an event seen twice or out of order"
    stored_ids = set(map(str, CommunicationEvent.objects.values_list("event_id", flat=True)))
    assert {event["id"] for event in seen} == stored_ids, "events the consumer never saw"
    last_seen = {}
    for event in seen:
        last_seen[event["subject"]] = event["data"]["version"]
    stored = dict(Communication.objects.filter(version__gt=1).values_list("uuid", "version"))
    assert last_seen == {str(uuid): version for uuid, version in stored.items()}
    for event in random.Random(0).sample(seen, 20):
        validate(event)
    # Through RabbitMQ: every event id arrived (at least once).
    assert {props.message_id for _m, props, _b in delivered} == stored_ids
