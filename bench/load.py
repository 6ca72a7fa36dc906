"""Load N generated communications into the database DATABASE_URL names, for the API benchmark.

    DATABASE_URL=postgres://... DJANGO_SETTINGS_MODULE=bench.settings python bench/load.py N DEEP

Migrates, COPYs the demo generator's rows (`communications.demo.generate`) and an ID translation
for every other one, makes a user with a token holding the view permission (through a group, as
an operator's would be), then `ANALYZE`s: the statistics state a user has after an import.
Prints one JSON object: the token, sample UUIDs and clients, and a cursor DEEP rows into the list.
"""

import base64
import json
import os
import random
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from communications.demo import generate  # noqa: E402
from communications.models import Communication  # noqa: E402

COLUMNS = [
    "uuid",
    "method_id",
    "kind",
    "direction",
    "status",
    "client_uuid",
    "employee_uuid",
    "dealer_uuid",
    "subject",
    "comment",
    "result",
    "details",
    "date_planned_start",
    "date_planned_finish",
    "date_start",
    "date_finish",
    "cancel_reason",
    "fail_reason",
    "date_created",
    "date_updated",
    "version",
]


def main() -> None:
    rows, deep = int(sys.argv[1]), int(sys.argv[2])
    call_command("migrate", verbosity=0)
    uuids, translated, clients = [], [], set()
    with connection.cursor() as cursor:
        copy_sql = f"COPY communications_communication ({', '.join(COLUMNS)}) FROM STDIN"
        with cursor.connection.cursor().copy(copy_sql) as copy:
            for number, row in enumerate(generate(rows, seed=7)):
                copy.write_row([Jsonb(row.details) if c == "details" else getattr(row, c) for c in COLUMNS[:-1]] + [1])
                uuids.append(row.uuid)
                if number % 2 == 0:
                    translated.append(row.uuid)
                clients.add(row.client_uuid)
        translations = "COPY id_translations_idtranslation (flora_uuid, oracle_id) FROM STDIN"
        with cursor.connection.cursor().copy(translations) as copy:
            for number, flora_uuid in enumerate(translated, start=1):
                copy.write_row((flora_uuid, number))
    user = User.objects.create_user("bench")
    readers = Group.objects.create(name="bench readers")
    readers.permissions.add(Permission.objects.get(codename="view_communication"))
    user.groups.add(readers)
    token = Token.objects.create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rng = random.Random(1)
    position = Communication.objects.order_by("-date_created", "-uuid").values_list("date_created", flat=True)[
        max(0, min(deep, rows - 50) - 1)
    ]
    cursor_param = base64.b64encode(urlencode({"p": str(position)}).encode()).decode()  # as DRF encodes it
    sample = rng.sample(uuids, 1000) if len(uuids) >= 1000 else rng.choices(uuids, k=1000)
    print(
        json.dumps(
            {
                "token": token,
                "uuids": [str(u) for u in sample],
                "clients": [str(c) for c in rng.sample(sorted(clients), min(200, len(clients)))],
                "deep_cursor": cursor_param,
                "deep_rows": max(0, min(deep, rows - 50)),
            }
        )
    )


if __name__ == "__main__":
    main()
