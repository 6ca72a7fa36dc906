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

from id_translations.models import IdTranslation

from . import transfer
from .models import AttemptOutcome, Communication, Direction, FailReason, Kind, Source, Status

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


def _people(rng: random.Random) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The dealerships and employees of a seed (the first draws of its generator)."""
    return [_uuid(rng) for _ in range(12)], [_uuid(rng) for _ in range(40)]


def generate(count: int, *, seed: int = 1, now: dt.datetime | None = None, first_oracle_id: int = 1) -> Iterator[dict]:
    """`count` rows in the import format (dates as aware datetimes, details as a dict).

    Dates lie in the year before `now`, by default today's midnight (UTC): the same seed gives
    the same rows all day long.
    """
    rng = random.Random(seed)
    now = now or timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    dealers, employees = _people(rng)
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


def load_today(count: int = 24, *, seed: int = 1, first_oracle_id: int = 1) -> int:
    """This morning's leads for the supervisors' dashboard: `count` site and app requests of the
    last three hours in three of the seed's dealerships, most tried by phone through the attempt
    service (some within the SLA, some late), the rest still waiting. Returns how many leads."""
    from . import services  # the importer above is the domain's too; services only for the attempts

    rng = random.Random(seed)
    dealers, employees = _people(rng)
    rng = random.Random(seed + 1)
    now = timezone.now()
    rows = []
    for number in range(count):
        created = now - dt.timedelta(minutes=rng.randrange(5, 180))
        method = rng.choice(["site_request", "site_request", "mobile_app_request"])
        rows.append(
            {
                "oracle_id": first_oracle_id + number,
                "method": method,
                "kind": Kind.ACTUAL.value,
                "direction": Direction.INBOUND.value,
                "status": Status.IN_WORK.value,
                "client_uuid": _uuid(rng),
                "employee_uuid": rng.choice(employees[:6]),
                "dealer_uuid": dealers[number % 3],
                "subject": rng.choice(["Заявка на тест-драйв", "Заявка на кредит", "Запись на сервис"]),
                "comment": "",
                "result": "",
                "date_planned_start": None,
                "date_planned_finish": None,
                "date_start": created,
                "date_finish": None,
                "cancel_reason": "",
                "fail_reason": "",
                "details": _details(rng, method),
                "date_created": created,
            }
        )
    report = transfer.ErrorReport(io.StringIO())
    records = transfer.records({name: transfer.cell(value) for name, value in row.items()} for row in rows)
    counts = transfer.import_rows(records, report=report, batch_size=5_000)
    if counts.rejected:
        raise RuntimeError(f"Generated rows were rejected:\n{report.out.getvalue()[:2000]}")
    oracle_ids = list(range(first_oracle_id, first_oracle_id + count))
    uuids = IdTranslation.objects.filter(oracle_id__in=oracle_ids).values_list("flora_uuid", flat=True)
    for lead in Communication.objects.filter(uuid__in=list(uuids)).order_by("date_created"):
        if rng.random() < 0.25:
            continue  # still waiting
        tried = min(now, lead.date_created + dt.timedelta(minutes=rng.choice([2, 5, 9, 14, 22, 40, 75])))
        outcome = rng.choice([AttemptOutcome.REACHED, AttemptOutcome.REACHED, AttemptOutcome.NO_ANSWER])
        services.attempt_record(
            uuid=lead.uuid, actor=None, source=Source.API, method="call", outcome=outcome, date=tried
        )
    return counts.created


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
