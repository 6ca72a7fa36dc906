"""Realistic generated communications in the import format, for the demo and the benchmarks.

`generate` yields rows as `import_communications` reads them (every active method with valid
details, kind, direction and status in plausible proportions, consistent dates), seeded: the same
seed gives the same rows. `generate_communications N FILE` writes them; `load` imports them
straight away through the importer, so the demo data passes the same rules as any import.
"""

import datetime as dt
import io
import random
import uuid
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from . import transfer
from .models import Direction, FailReason, Kind, Status

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
COMMENTS = ["", "", "", "Просил перезвонить после 18:00", "Клиент постоянный, скидка 5%", "Уточнить комплектацию"]
MESSENGERS = ["whatsapp", "telegram", "viber", "vk", "max"]
# Active methods with rough real-life weights and the chance a communication is inbound.
METHODS = [
    ("call", 35, 0.5),
    ("visit", 14, 0.9),
    ("sms", 10, 0.1),
    ("site_request", 15, 1.0),
    ("email", 8, 0.4),
    ("mobile_app_request", 7, 1.0),
    ("messenger", 11, 0.6),
]
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


def _details(rng: random.Random, method: str) -> dict[str, Any]:
    phone = f"+79{rng.randrange(10**9):09d}"
    if method == "call":
        details: dict[str, Any] = {"phone": phone}
        if rng.random() < 0.6:
            details["call_id"] = f"pbx-{rng.getrandbits(48):012x}"
            details["duration_sec"] = rng.randrange(5, 1800)
        if rng.random() < 0.3:
            details["recording_url"] = f"https://pbx.example.ru/rec/{rng.getrandbits(64):016x}.mp3"
        return details
    if method == "sms":
        return {"phone": phone}
    if method == "email":
        return {"email": f"client{rng.randrange(10**6)}@example.ru"}
    if method == "messenger":
        return {"messenger": rng.choice(MESSENGERS), "handle": f"@client{rng.randrange(10**6)}"}
    if method in ("site_request", "mobile_app_request"):
        details = {
            "form": rng.choice(["test-drive", "service", "credit"]),
            "utm_source": rng.choice(["yandex", "vk", "direct"]),
        }
        if rng.random() < 0.5:
            details["source_url"] = f"https://dealer.example.ru/{rng.choice(['kia', 'haval', 'chery'])}/"
        return details
    return {}


def generate(count: int, *, seed: int = 1, now: dt.datetime | None = None, first_oracle_id: int = 1) -> Iterator[dict]:
    """`count` rows in the import format (dates as aware datetimes, details as a dict).

    Dates lie in the year before `now`, by default today's midnight (UTC): the same seed gives
    the same rows all day long.
    """
    rng = random.Random(seed)
    now = now or timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    dealers = [_uuid(rng) for _ in range(12)]
    employees = [_uuid(rng) for _ in range(40)]
    clients = [_uuid(rng) for _ in range(max(1, count // 3))]
    state_weights = [weight for *_, weight in STATES]
    method_weights = [weight for _, weight, _ in METHODS]
    for number in range(count):
        kind, status, _weight = rng.choices(STATES, state_weights)[0]
        method, _weight, inbound = rng.choices(METHODS, method_weights)[0]
        created = now - dt.timedelta(seconds=rng.randrange(60, 365 * 86400))
        planned_start = planned_finish = date_start = date_finish = None
        if kind == Kind.PLANNED:
            planned_start = created + dt.timedelta(hours=rng.randrange(1, 240))
            planned_finish = planned_start + dt.timedelta(minutes=rng.choice([15, 30, 60]))
        if kind == Kind.ACTUAL:
            date_start = created
        elif status == Status.IN_WORK or (status in (Status.DONE, Status.FAILED) and rng.random() < 0.8):
            date_start = min(planned_start, now)
        if status == Status.DONE:
            date_finish = min((date_start or created) + dt.timedelta(minutes=rng.randrange(1, 90)), now)
        yield {
            "oracle_id": first_oracle_id + number,
            "method": method,
            "kind": kind.value,
            "direction": (Direction.INBOUND if rng.random() < inbound else Direction.OUTBOUND).value,
            "status": status.value,
            "client_uuid": rng.choice(clients),
            "employee_uuid": rng.choice(employees) if rng.random() < 0.95 else None,
            "dealer_uuid": rng.choice(dealers),
            "subject": rng.choice(SUBJECTS),
            "comment": rng.choice(COMMENTS),
            "result": rng.choice(RESULTS) if status == Status.DONE else "",
            "date_planned_start": planned_start,
            "date_planned_finish": planned_finish,
            "date_start": date_start,
            "date_finish": date_finish,
            "cancel_reason": "Клиент перенёс визит" if status == Status.CANCELLED else "",
            "fail_reason": rng.choice(FailReason.values) if status == Status.FAILED else "",
            "details": _details(rng, method),
            "date_created": created,
        }


def write(out, count: int, *, file_format: str, seed: int = 1, first_oracle_id: int = 1) -> int:
    writer = transfer.Writer(out, file_format)
    for row in generate(count, seed=seed, first_oracle_id=first_oracle_id):
        writer.write(row)
    return count


def load(count: int, *, seed: int = 1, first_oracle_id: int = 1) -> int:
    """Import `count` generated communications (with translations and history); return how many."""
    report = transfer.ErrorReport(io.StringIO())
    rows = (
        {name: transfer.cell(value) for name, value in row.items()}
        for row in generate(count, seed=seed, first_oracle_id=first_oracle_id)
    )
    counts = transfer.import_rows(transfer.records(rows), report=report, batch_size=5_000)
    if counts.rejected:  # generated rows must pass the rules; a failure here is a bug in generate()
        raise RuntimeError(f"Generated rows were rejected:\n{report.out.getvalue()[:2000]}")
    return counts.created
