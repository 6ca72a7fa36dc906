"""Realistic generated communications for the demo and the benchmarks.

Rows are built in memory in every reachable state of the state machine and bulk-inserted with a
`create` history row each, so a million rows take a minute, not an hour. The check constraints of
the model guard the invariants (done ⇔ date_finish, only planned cancelled).
"""

import datetime as dt
import random
import uuid
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from .models import (
    Communication,
    CommunicationHistory,
    Direction,
    FailReason,
    HistoryAction,
    Kind,
    Source,
    Status,
)

SUBJECTS = [
    "Тест-драйв Kia Rio",
    "Запись на ТО",
    "Уточнение стоимости Haval Jolion",
    "Кредитное предложение",
    "Trade-in: оценка автомобиля",
    "Покупка зимних шин",
    "Готовность автомобиля после ремонта",
    "Продление КАСКО",
    "Приглашение на презентацию новой модели",
    "Обратный звонок по заявке",
]
RESULTS = ["Клиент записан", "Договорились о встрече", "Клиент подумает", "Сделка оформлена"]
MESSENGERS = ["whatsapp", "telegram", "viber", "vk", "max"]
ACTIVE_METHODS = ["call", "visit", "sms", "site_request", "email", "mobile_app_request", "messenger"]
# (kind, status) pairs the state machine can reach, with rough real-life weights.
STATES = [
    (Kind.ACTUAL, Status.IN_WORK, 5),
    (Kind.ACTUAL, Status.DONE, 40),
    (Kind.ACTUAL, Status.FAILED, 8),
    (Kind.PLANNED, Status.CREATED, 15),
    (Kind.PLANNED, Status.IN_WORK, 5),
    (Kind.PLANNED, Status.DONE, 17),
    (Kind.PLANNED, Status.CANCELLED, 6),
    (Kind.PLANNED, Status.FAILED, 4),
]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _uuid7(moment: dt.datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 for a past moment (RFC 9562: 48-bit ms time, version 7, variant 10)."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(
        int=(millis << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    )


def _details(rng: random.Random, method: str, phone: str) -> dict:
    if method in ("call", "sms"):
        return {"phone": phone}
    if method == "email":
        return {"email": f"client{rng.randrange(10**6)}@example.ru"}
    if method == "messenger":
        return {"messenger": rng.choice(MESSENGERS), "handle": f"@client{rng.randrange(10**6)}"}
    if method in ("site_request", "mobile_app_request"):
        return {
            "form": rng.choice(["test-drive", "service", "credit"]),
            "utm_source": rng.choice(["yandex", "vk", "direct"]),
        }
    return {}


def generate(count: int, *, seed: int = 1, now: dt.datetime | None = None) -> Iterator[Communication]:
    rng = random.Random(seed)
    now = now or timezone.now()
    dealers = [_uuid(rng) for _ in range(12)]
    employees = [_uuid(rng) for _ in range(40)]
    clients = [_uuid(rng) for _ in range(max(1, count // 3))]
    weights = [weight for *_, weight in STATES]
    for _ in range(count):
        kind, status, _weight = rng.choices(STATES, weights)[0]
        method = rng.choice(ACTIVE_METHODS)
        created = now - dt.timedelta(seconds=rng.randrange(1, 365 * 86400))
        planned_start = planned_finish = date_start = date_finish = None
        if kind == Kind.PLANNED:
            planned_start = created + dt.timedelta(hours=rng.randrange(1, 240))
            planned_finish = planned_start + dt.timedelta(minutes=rng.choice([15, 30, 60]))
        if status != Status.CREATED:
            date_start = planned_start if kind == Kind.PLANNED else created
            date_start = min(date_start, now)
        if status == Status.DONE:
            date_finish = min(date_start + dt.timedelta(minutes=rng.randrange(1, 90)), now)
        yield Communication(
            uuid=_uuid7(created, rng),
            method_id=method,
            kind=kind,
            direction=rng.choice([Direction.INBOUND, Direction.OUTBOUND]),
            status=status,
            client_uuid=rng.choice(clients),
            employee_uuid=rng.choice(employees),
            dealer_uuid=rng.choice(dealers),
            subject=rng.choice(SUBJECTS),
            result=rng.choice(RESULTS) if status == Status.DONE else "",
            details=_details(rng, method, f"+79{rng.randrange(10**9):09d}"),
            date_planned_start=planned_start,
            date_planned_finish=planned_finish,
            date_start=date_start,
            date_finish=date_finish,
            cancel_reason="Клиент перенёс визит" if status == Status.CANCELLED else "",
            fail_reason=rng.choice(FailReason.values) if status == Status.FAILED else "",
            date_created=created,
            date_updated=date_finish or date_start or created,
        )


def load(count: int, *, seed: int = 1, batch_size: int = 5000) -> int:
    """Insert `count` generated communications with their history; return how many."""
    batch: list[Communication] = []
    total = 0
    for communication in generate(count, seed=seed):
        batch.append(communication)
        if len(batch) == batch_size:
            total += _insert(batch)
            batch = []
    if batch:
        total += _insert(batch)
    return total


@transaction.atomic
def _insert(batch: list[Communication]) -> int:
    Communication.objects.bulk_create(batch)
    CommunicationHistory.objects.bulk_create(
        CommunicationHistory(
            communication=communication,
            date=communication.date_created,
            source=Source.IMPORT,
            action=HistoryAction.CREATE,
            status_to=communication.status,
        )
        for communication in batch
    )
    return len(batch)
