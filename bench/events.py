"""Benchmark: what the change feed costs, each part against a baseline measured in the same run.

    .venv/bin/python bench/events.py [--db communications_bench_events] [--count 2000] [--rounds 3]
        [--events 5000] [--import-rows 100000 (0: skip)] [--broker amqp://guest:guest@127.0.0.1:5672/]

On a fresh PostgreSQL database (dropped and made again):
  1. writes: `count` creates, then a close of each, through the services (as the API calls them),
     with the outbox against the same calls with it taken out (no event written, and the row lock
     without the joins only the event's view needs). Same inputs, same order; rounds alternate
     which goes first. Aim (issue 16): >= 0.85.
  2. relay: `manage.py publish_events`'s loop publishing `events` events (read from the feed,
     published with confirms, progress saved) against a bare loop publishing the same bodies and
     properties, prepared beforehand, with confirms through the same library (pika) to the same kind
     of exchange and queue. Aim: >= 0.8.
  3. import: `import_communications FILE` against `import_communications --no-events FILE`, the
     same generated file into a fresh database each time.
Ratios are medians over the rounds. Numbers from a busy shared machine are noisy; the ratios are
what to read (docs/BENCHMARKS.md).
"""

import argparse
import contextlib
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]


def fresh_database(name: str) -> None:
    subprocess.run(
        [*PSQL, "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}", "postgres"], check=True
    )


def environment(db: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "communications_project.settings",
    }


# 1. Writes with and without the outbox


@contextlib.contextmanager
def without_outbox():
    """The services as they were before the feed: no event, and a row lock without the view's joins."""
    from communications import services
    from communications.models import Communication

    record, lock = services.events.record, services._lock

    def plain_lock(uuid, *, deleted: bool = False):
        queryset = Communication.objects.deleted() if deleted else Communication.objects.alive()
        return queryset.select_for_update().get(uuid=uuid)

    services.events.record = lambda communication, entry: None
    services._lock = plain_lock
    try:
        yield
    finally:
        services.events.record, services._lock = record, lock


def writes(count: int, seed: int) -> float:
    """Creates then closes per second, through the services."""
    from communications import services
    from communications.models import Source

    rng = random.Random(seed)
    inputs = [
        {
            "method": "call",
            "kind": "planned",
            "direction": "outbound",
            "client_uuid": uuid.UUID(int=rng.getrandbits(128)),
            "employee_uuid": uuid.UUID(int=rng.getrandbits(128)),
            "subject": f"Пригласить на тест-драйв {n}",
            "details": {"phone": f"+7916{rng.randrange(10**7):07d}"},
            "date_planned_start": dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n),
        }
        for n in range(count)
    ]
    started = time.perf_counter()
    made = [services.communication_create(actor=None, source=Source.API, **data) for data in inputs]
    for communication in made:
        services.communication_transition(
            uuid=communication.uuid, name="close", actor=None, source=Source.API, result="bench"
        )
    return 2 * count / (time.perf_counter() - started)


# 2. The relay against a bare publishing loop


def _bound_queue(channel, exchange: str) -> str:
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = f"{exchange}.all"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="#")
    return queue


def relay_rate(broker: str, count: int) -> float:
    import pika

    from communications.relay import Relay

    exchange = f"bench.events.{uuid.uuid4().hex[:8]}"
    setup = pika.BlockingConnection(pika.URLParameters(broker))
    channel = setup.channel()
    queue = _bound_queue(channel, exchange)
    relay = Relay(url=broker, exchange=exchange, batch=500, poll=0.01, heartbeat_every=5.0)
    started = time.perf_counter()
    relay.run(until=lambda: relay.published >= count)
    seconds = time.perf_counter() - started
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    setup.close()
    from communications.models import EventRelay

    EventRelay.objects.filter(name=exchange).delete()
    return relay.published / seconds


def bare_rate(broker: str, count: int) -> float:
    import pika

    from communications import events
    from communications.relay import properties

    messages, after = [], None
    while len(messages) < count:
        page = events.event_page(after=after, limit=1000, alias="default")
        messages += [(event.type, event.body(), properties(event)) for event in page.events]
        after = page.next
        if not page.has_more:
            break
    messages = messages[:count]
    exchange = f"bench.bare.{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    queue = _bound_queue(channel, exchange)
    channel.confirm_delivery()
    for routing_key, body, props in messages:
        channel.basic_publish(exchange, routing_key, body, props)
    seconds = time.perf_counter() - started
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()
    return len(messages) / seconds


# 3. The import with and without its events


def import_seconds(db: str, csv_path: Path, *extra: str) -> float:
    fresh_database(db)
    env = environment(db)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", "import_communications", str(csv_path), "--no-progress", "--errors", os.devnull]
        + list(extra),
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="communications_bench_events")
    parser.add_argument("--count", type=int, default=2000, help="communications created then closed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=5000, help="events the relay and the bare loop publish")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()

    fresh_database(args.db)
    os.environ.update(environment(args.db))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    rows = []
    outbox, baseline = [], []
    for round_ in range(args.rounds):
        order = ("outbox", "baseline") if round_ % 2 == 0 else ("baseline", "outbox")
        for mode in order:
            if mode == "baseline":
                with without_outbox():
                    baseline.append(writes(args.count, seed=round_))
            else:
                outbox.append(writes(args.count, seed=round_))
        print(f"round {round_ + 1}: outbox {outbox[-1]:,.0f}/s, without {baseline[-1]:,.0f}/s", flush=True)
    rows.append(("create + close, writes/s", statistics.median(outbox), statistics.median(baseline), 0.85))

    from communications.models import CommunicationEvent

    have = CommunicationEvent.objects.count()
    count = min(args.events, have)
    relay, bare = [], []
    for round_ in range(args.rounds):
        for mode in ("relay", "bare") if round_ % 2 == 0 else ("bare", "relay"):
            (relay if mode == "relay" else bare).append(
                relay_rate(args.broker, count) if mode == "relay" else bare_rate(args.broker, count)
            )
        print(f"round {round_ + 1}: relay {relay[-1]:,.0f}/s, bare loop {bare[-1]:,.0f}/s", flush=True)
    rows.append((f"publish {count:,} events, events/s", statistics.median(relay), statistics.median(bare), 0.8))

    from django.db import connections

    connections.close_all()
    if args.import_rows:
        rows.append(import_ratio(args))
    print()
    print(f"rounds: {args.rounds} (medians); {args.count:,} creates + {args.count:,} closes per round")
    print("| what | with the feed | baseline | ratio | aim |")
    print("| --- | --- | --- | --- | --- |")
    for what, measured, base, aim in rows:
        print(f"| {what} | {measured:,.0f} | {base:,.0f} | {measured / base:.2f} | {f'>= {aim}' if aim else '—'} |")
    connections.close_all()
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {args.db}", "postgres"], check=True)


def import_ratio(args) -> tuple:
    from django.core.management import call_command

    csv_path = ROOT / "bench" / "out" / f"communications_{args.import_rows}.csv"
    csv_path.parent.mkdir(exist_ok=True)
    if not csv_path.exists():
        call_command("generate_communications", str(args.import_rows), str(csv_path))
    with_events, without = [], []
    for round_ in range(args.rounds):
        for mode in ("events", "none") if round_ % 2 == 0 else ("none", "events"):
            extra = () if mode == "events" else ("--no-events",)
            rate = args.import_rows / import_seconds(f"{args.db}_import", csv_path, *extra)
            (with_events if mode == "events" else without).append(rate)
        print(f"round {round_ + 1}: import {with_events[-1]:,.0f} rows/s, --no-events {without[-1]:,.0f}", flush=True)
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {args.db}_import", "postgres"], check=True)
    return (
        f"import {args.import_rows:,} rows, rows/s",
        statistics.median(with_events),
        statistics.median(without),
        None,
    )


if __name__ == "__main__":
    main()
