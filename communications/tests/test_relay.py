"""`manage.py publish_events` against the machine's real RabbitMQ: routing, properties, confirms,
order, one relay at a time, and faults with nothing lost (docs/EVENTS.md)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pika
import pytest
from django.conf import settings
from django.db import connection

from communications import events, services
from communications.models import Communication, CommunicationEvent, EventRelay, Kind, RelayState, Source
from communications.relay import CONTENT_TYPE, Relay, lock_key

from .factories import CommunicationFactory
from .feed import validate, wait_for
from .rabbit import URL

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 60.0


class RelayThread:
    """A relay in a thread of this process (its own database connection), with test-sized timings."""

    def __init__(self, exchange: str, url: str = URL, **options):
        options = {"batch": 100, "poll": 0.05, "backoff_initial": 0.1, "backoff_max": 0.5, **options}
        self.relay = Relay(url=url, exchange=exchange, heartbeat_every=0.2, lock_poll=0.1, **options)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.relay.run()
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self.relay

    def __exit__(self, *exc):
        self.relay.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _changes(count: int) -> list[Communication]:
    """`count` events: creates are the factory's (no event), each update one event."""
    made = CommunicationFactory.create_batch(count, kind=Kind.PLANNED)
    for number, communication in enumerate(made):
        services.communication_update(
            uuid=communication.uuid, actor=None, source=Source.API, data={"subject": f"change {number}"}
        )
    return made


def _bodies(messages) -> list[dict]:
    return [json.loads(body) for _method, _props, body in messages]


def _wait(predicate, timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.05)


def _relay_row(exchange: str) -> EventRelay | None:
    return EventRelay.objects.filter(name=exchange).first()


def test_each_event_goes_to_the_exchange_by_type_persistent_with_its_id_and_cloudevents_headers(
    exchange, queue, api_as
):
    client = api_as(
        "communications.add_communication",
        "communications.change_communication",
        "communications.view_communication",
        "communications.view_communicationevent",
    )
    created = client.post(
        "/v2/communications",
        {"method": "visit", "kind": "actual", "direction": "inbound", "client_uuid": str(uuid.uuid4())},
        format="json",
    ).json()
    assert client.patch(f"/v2/communications/{created['uuid']}", {"subject": "x"}, format="json").status_code == 200
    assert client.patch(f"/v2/communications/{created['uuid']}/close", {}, format="json").status_code == 200
    over_http, _ = wait_for(client, 3)

    with RelayThread(exchange):
        messages = queue.take(3)

    assert [m.routing_key for m, _p, _b in messages] == [
        "communication.created",
        "communication.updated",
        "communication.status_changed",
    ]
    for (method, props, body), event in zip(messages, over_http, strict=True):
        assert method.exchange == exchange
        received = json.loads(body)
        validate(received)
        assert received == event  # the same event over HTTP and AMQP: id, sequence, data
        assert props.message_id == event["id"]
        assert props.type == event["type"]
        assert props.delivery_mode == pika.DeliveryMode.Persistent.value
        assert props.content_type == CONTENT_TYPE
        assert props.app_id == "communications"
        # (a quorum queue adds its own x-delivery-count)
        assert {key: value for key, value in props.headers.items() if not key.startswith("x-")} == {
            "cloudEvents:specversion": "1.0",
            "cloudEvents:id": event["id"],
            "cloudEvents:source": settings.EVENTS_SOURCE,
            "cloudEvents:type": event["type"],
            "cloudEvents:subject": event["subject"],
            "cloudEvents:time": event["time"],
            "cloudEvents:sequence": event["sequence"],
        }
    row = _relay_row(exchange)
    assert (row.published, events.Position(row.txid, row.event).cursor) == (3, over_http[-1]["sequence"])
    assert row.state == RelayState.STOPPED


def test_the_exchange_is_a_durable_topic_exchange(exchange, queue):
    _changes(1)
    with RelayThread(exchange):
        queue.take(1)
    channel = pika.BlockingConnection(pika.URLParameters(URL)).channel()
    # Declaring it passively with other properties would fail: it exists, durable, as the relay made it.
    channel.exchange_declare(exchange, exchange_type="topic", durable=True, passive=True)
    channel.connection.close()


def test_the_position_moves_only_past_what_the_broker_confirmed(exchange, queue):
    """A queue that refuses what it cannot hold makes the broker nack: the relay keeps its position
    and publishes the refused event again once there is room."""
    channel = queue.channel
    full = f"{exchange}.full"
    channel.queue_declare(full, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.queue_bind(full, exchange, routing_key="#")
    _changes(3)
    feed = list(CommunicationEvent.objects.order_by("txid", "id"))
    first = events.Position(feed[0].txid, feed[0].id)

    with RelayThread(exchange):
        _wait(lambda: _relay_row(exchange) and _relay_row(exchange).published >= 1, what="the first confirm")
        time.sleep(1.0)  # nacks and retries meanwhile
        row = _relay_row(exchange)
        assert (row.published, events.Position(row.txid, row.event)) == (1, first)
        assert "NackError" in row.last_error
        channel.queue_delete(full)  # room again
        _wait(lambda: _relay_row(exchange).published == 3, what="all three confirmed")

    expected = {str(event.event_id) for event in feed}
    assert {body["id"] for body in _bodies(queue.take_ids(expected))} == expected


def test_per_communication_events_arrive_in_version_order_and_all_in_feed_order(exchange, queue):
    made = CommunicationFactory.create_batch(5, kind=Kind.PLANNED)
    for round_ in range(4):
        for communication in made:
            services.communication_update(
                uuid=communication.uuid, actor=None, source=Source.API, data={"comment": f"round {round_}"}
            )
    with RelayThread(exchange, batch=7):
        bodies = _bodies(queue.take(20))
    assert [b["sequence"] for b in bodies] == sorted(b["sequence"] for b in bodies)
    for communication in made:
        versions = [b["data"]["version"] for b in bodies if b["subject"] == str(communication.uuid)]
        assert versions == [2, 3, 4, 5]


def test_broker_unreachable_writes_answer_as_before_events_wait_then_all_arrive(exchange, queue, proxy, api_as):
    client = api_as("communications.add_communication", "communications.view_communication")
    body = {"method": "visit", "kind": "actual", "direction": "inbound"}
    with RelayThread(exchange, url=proxy.url) as relay:
        first = client.post("/v2/communications", {**body, "client_uuid": str(uuid.uuid4())}, format="json")
        assert first.status_code == 201
        queue.take(1)
        proxy.cut()
        _wait(lambda: relay.state == RelayState.DISCONNECTED, what="the relay to notice")
        answers = [
            client.post("/v2/communications", {**body, "client_uuid": str(uuid.uuid4())}, format="json")
            for _ in range(10)
        ]
        assert [a.status_code for a in answers] == [201] * 10  # the broker is not on the write path
        assert len(queue.take(11, timeout=1.0)) == 1  # nothing got through meanwhile
        assert events.pending(events.Position(relay.position.txid, relay.position.id), cap=100)[0] == 10
        proxy.restore()
        bodies = _bodies(queue.take(11))
    assert [b["subject"] for b in bodies] == [first.json()["uuid"]] + [a.json()["uuid"] for a in answers]
    assert proxy.accepted >= 2  # it did reconnect


def _command(exchange: str, log, **env) -> subprocess.Popen:
    database = connection.settings_dict
    environment = {
        **os.environ,
        "DEBUG": "1",
        "LOG_FORMAT": "plain",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format_map(
            {**database, "HOST": database["HOST"] or "127.0.0.1", "PORT": database["PORT"] or 5432}
        ),
        "EVENTS_BROKER_URL": URL,
        "EVENTS_EXCHANGE": exchange,
        "EVENTS_RELAY_POLL_SECONDS": "0.05",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "publish_events"],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextlib.contextmanager
def _process(exchange: str, tmp_path, name: str, **env):
    path = tmp_path / f"{name}.log"
    with path.open("w") as log:
        process = _command(exchange, log, **env)
        try:
            yield process, path
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(30)


def test_killed_mid_batch_and_restarted_every_event_arrives_duplicates_only_with_the_same_id(exchange, queue, tmp_path):
    _changes(1500)
    with _process(exchange, tmp_path, "first", EVENTS_RELAY_BATCH="1000") as (first, log):
        queue.take(100)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    saved = _relay_row(exchange)
    delivered = len(queue.take(10**6, timeout=1.0))
    assert saved.published < delivered  # confirmed, not saved: these will come again

    with _process(exchange, tmp_path, "second") as (second, _log):
        messages = queue.take(delivered - saved.published + 1500, timeout=120)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0

    by_id: dict[str, set[bytes]] = {}
    for _method, props, body in messages:
        by_id.setdefault(props.message_id, set()).add(body)
    expected = {str(event_id) for event_id in CommunicationEvent.objects.values_list("event_id", flat=True)}
    assert set(by_id) == expected  # every event
    assert all(len(bodies) == 1 for bodies in by_id.values())  # a duplicate is the same event, byte for byte
    assert len(messages) > len(expected)  # and there were duplicates: the kill was mid-batch
    assert _relay_row(exchange).state == RelayState.STOPPED


def test_a_second_relay_waits_then_takes_over_when_the_first_is_killed(exchange, queue, tmp_path):
    _changes(3)
    with (
        _process(exchange, tmp_path, "first") as (first, first_log),
        _process(exchange, tmp_path, "second") as (second, second_log),
    ):
        queue.take(3)
        # Whichever started faster holds the lock; the other says it waits.
        logs = {first.pid: first_log, second.pid: second_log}
        _wait(lambda: any("waiting to take over" in log.read_text() for log in logs.values()), what="one to wait")
        holder = _relay_row(exchange).pid
        assert holder in logs
        standby = second if holder == first.pid else first
        assert "waiting to take over" in logs[standby.pid].read_text()
        os.kill(holder, signal.SIGKILL)
        _changes(2)
        bodies = _bodies(queue.take(5))
        _wait(lambda: _relay_row(exchange).pid == standby.pid, what="the takeover")
        assert _relay_row(exchange).state == RelayState.PUBLISHING
    assert len({b["id"] for b in bodies}) == 5


def test_sigterm_stops_the_relay_cleanly_and_frees_the_lock(exchange, queue, tmp_path):
    _changes(2)
    with _process(exchange, tmp_path, "relay") as (process, log):
        queue.take(2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    text = log.read_text()
    assert "SIGTERM received, stopping" in text and "stopped (2 published by this process)" in text
    assert _relay_row(exchange).state == RelayState.STOPPED
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s), pg_advisory_unlock(%s)", [lock_key(exchange)] * 2)
        assert cursor.fetchone() == (True, True)


def test_the_relays_backlog_and_lag_are_in_the_metrics(exchange, queue, client, settings):
    settings.METRICS_TOKEN = "t" * 32
    _changes(2)
    with RelayThread(exchange):
        queue.take(2)
    _changes(3)
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {'t' * 32}").content.decode()
    assert f'communications_events_pending{{exchange="{exchange}"}} 3.0' in text
    assert f'communications_events_published_total{{exchange="{exchange}"}} 2.0' in text
    lag = next(
        line
        for line in text.splitlines()
        if line.startswith(f'communications_events_lag_seconds{{exchange="{exchange}"')
    )
    assert 0 < float(lag.split()[-1]) < 600
    assert f'communications_events_relay_heartbeat_age_seconds{{exchange="{exchange}",state="stopped"}}' in text
