"""Benchmark: the operators' list at scale, against the admin's start page in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB .venv/bin/python bench/admin_list.py [--requests 30]

Runs against an existing database (fill it first, e.g. `manage.py load_demo_data --count N`),
in-process through Django's test client as a superuser (no HTTP: the admin's own cost). For each
page: p50/p95 in ms, p50 as a multiple of the start page's, the number of queries, and the
indexes PostgreSQL's plan of the page's row query uses.
"""

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "communications_project.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from communications.models import Communication  # noqa: E402

LIST = "/admin/communications/communication/"


def timings(client: Client, url: str, count: int) -> list[float]:
    assert client.get(url).status_code == 200  # warm up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    user, _ = get_user_model().objects.get_or_create(username="bench-admin")
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client(HTTP_ACCEPT_LANGUAGE="ru", HTTP_HOST="localhost")
    client.force_login(user)
    phone = Communication.objects.exclude(details__phone=None).values_list("details__phone", flat=True).first()

    pages = [
        ("start page (baseline)", "/admin/"),
        ("list, newest first", LIST),
        ("overdue", LIST + "?queue=overdue"),
        ("planned for today", LIST + "?queue=today"),
        ("status + method", LIST + "?status__exact=in_work&method__code__exact=call"),
        ("overdue + status + method + phone search", LIST + f"?queue=overdue&status__exact=created&q={phone}"),
        ("status + phone search", LIST + f"?status__exact=created&q={phone}"),
        ("list, page 20", LIST + "?p=19"),
    ]
    print(f"{Communication.objects.count():,} communications; {args.requests} requests per page\n")
    print("| page | p50 ms | p95 ms | × start page | queries | indexes used |")
    print("| --- | --- | --- | --- | --- | --- |")
    floor = None
    for name, url in pages:
        samples = timings(client, url, args.requests)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        rows_sql = [q["sql"] for q in captured.captured_queries if 'FROM "communications_communication"' in q["sql"]]
        indexes = set()
        for sql in rows_sql:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql)
                plan = "\n".join(line for (line,) in cursor.fetchall())
            indexes |= set(re.findall(r"using (\w+)", plan, flags=re.IGNORECASE))
        p50 = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[-1]
        floor = floor or p50
        print(
            f"| {name} | {p50:.1f} | {p95:.1f} | {p50 / floor:.1f} | {len(captured.captured_queries)} "
            f"| {', '.join(sorted(indexes)) or '—'} |"
        )


if __name__ == "__main__":
    main()
