"""Reading the change feed in tests as a consumer would, and checking events against the JSON Schema.

The feed serves an event once every transaction that started writing before it has ended, in the
whole PostgreSQL cluster: on a shared machine another suite's open transaction can hold it back
for a while. Tests wait for what they expect, with a deadline, instead of reading once.
"""

import json
import time
from pathlib import Path

import jsonschema
from django.conf import settings

SCHEMA = json.loads((Path(settings.BASE_DIR) / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
FEED = "/v3/communications/events"
WAIT = 60.0  # seconds: a deadline for a busy machine, not an expected latency

# What a consumer of the feed holds.
FEED_PERMS = ("communications.view_communicationevent",)


def validate(event: dict) -> None:
    VALIDATOR.validate(event)


def page(client, **params) -> dict:
    response = client.get(FEED, params)
    assert response.status_code == 200, response.content
    body = response.json()
    for event in body["results"]:
        validate(event)
    return body


def read_all(client, after: str | None = None, **params) -> tuple[list[dict], str]:
    """Every event served now after `after`, following `next` to the end; and the last `next`."""
    events: list[dict] = []
    while True:
        body = page(client, **({"after": after} if after else {}), **params)
        events.extend(body["results"])
        after = body["next"]
        if not body["has_more"]:
            return events, after


def wait_for(client, count: int, after: str | None = None, timeout: float = WAIT, **params) -> tuple[list[dict], str]:
    """Follow the feed until at least `count` events arrived after `after`."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while True:
        events, after = read_all(client, after, **params)
        seen.extend(events)
        if len(seen) >= count or time.monotonic() > deadline:
            return seen, after
        time.sleep(0.05)
