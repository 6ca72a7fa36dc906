"""Profile the API's reads in-process with pyinstrument, on a database bench/load.py filled.

    .venv/bin/python bench/api_throughput.py --rows 20000 --duration 1 --rounds 1 --keep
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/communications_bench_throughput_20000 \\
        .venv/bin/python bench/profile_reads.py [get|list|collection|methods] [--repeat 300]

Prints where the time of REPEAT requests goes, the WSGI handler down (no HTTP server).
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
os.environ.setdefault("PYTHONWARNINGS", "ignore")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from communications.models import Communication  # noqa: E402
from credentials.services import api_key_create  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["get", "list", "collection", "methods"])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    key = api_key_create(user=User.objects.get(username="bench"), name="profile_reads")[1]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")
    uuids = [str(u) for u in Communication.objects.values_list("uuid", flat=True)[:1000]]

    def request():
        if args.what == "get":
            return client.get(f"/v2/communications/{uuids[0]}")
        if args.what == "list":
            return client.get("/v3/communications")
        if args.what == "methods":
            return client.get("/v2/dicts/communications-methods")
        body = json.dumps({"uuids": uuids, "view": "full"})
        return client.post("/v3/collections/communications", body, content_type="application/json")

    assert request().status_code == 200
    repeat = max(args.repeat // 50, 3) if args.what == "collection" else args.repeat
    with Profiler(interval=0.0002) as profiler:
        for _ in range(repeat):
            request()
    profiler.print(show_all=False, short_mode=False)


if __name__ == "__main__":
    main()
