"""Load N generated communications into the database DATABASE_URL names, for the API benchmark.

    DATABASE_URL=postgres://... DJANGO_SETTINGS_MODULE=bench.settings python bench/load.py N DEEP

Migrates, imports the demo generator's rows through the importer (`communications.demo.load`:
COPY, an ID translation and a history row each, `ANALYZE` at the end: the statistics state a
user has after an import), and makes a user holding the view permission and the reports'
(through a group, as an operator's or a supervisor's would be) with an API key, and with the DRF
token of before issue 21 for the baseline (bench/legacy_token.py). Prints one JSON object: the
key, the DRF token, sample UUIDs and clients, and a cursor DEEP rows into the list.
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
from rest_framework.authtoken.models import Token  # noqa: E402  (bench/settings.py installs it)

from bench.identity_provider import DJANGO_GROUP as READERS  # noqa: E402  (the JWT's groups map to it)
from communications import demo  # noqa: E402
from communications.models import Communication  # noqa: E402
from credentials.services import api_key_create  # noqa: E402


def main() -> None:
    rows, deep = int(sys.argv[1]), int(sys.argv[2])
    call_command("migrate", verbosity=0)
    # As a user loads data: the importer (COPY, translations, history, ANALYZE at the end).
    demo.load(rows, seed=7)
    user = User.objects.create_user("bench")
    readers = Group.objects.create(name=READERS)
    # Reads, and the reports (bench/lead_response.py).
    readers.permissions.add(*Permission.objects.filter(codename__in=["view_communication", "view_reports"]))
    user.groups.add(readers)
    token = api_key_create(user=user, name="bench")[1]
    legacy_token = Token.objects.create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.5)")
        cursor.execute("SELECT uuid FROM communications_communication ORDER BY random() LIMIT 1000")
        uuids = [str(found[0]) for found in cursor.fetchall()]
        cursor.execute(
            "SELECT client_uuid FROM (SELECT DISTINCT client_uuid FROM communications_communication) c "
            "ORDER BY random() LIMIT 200"
        )
        clients = [str(found[0]) for found in cursor.fetchall()]
    rng = random.Random(1)
    position = Communication.objects.order_by("-date_created", "-uuid").values_list("date_created", flat=True)[
        max(0, min(deep, rows - 50) - 1)
    ]
    cursor_param = base64.b64encode(urlencode({"p": str(position)}).encode()).decode()  # as DRF encodes it
    sample = uuids if len(uuids) >= 1000 else rng.choices(uuids, k=1000)
    print(
        json.dumps(
            {
                "token": token,
                "legacy_token": legacy_token,
                "uuids": sample,
                "clients": clients,
                "deep_cursor": cursor_param,
                "deep_rows": max(0, min(deep, rows - 50)),
            }
        )
    )


if __name__ == "__main__":
    main()
