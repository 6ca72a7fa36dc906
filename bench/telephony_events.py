"""Benchmark: how cheaply the ARI events listener ignores other channels' events, same run baseline.

    DATABASE_URL=postgres://… .venv/bin/python bench/telephony_events.py [--events 100000]

With subscribeAll, every channel on the PBX reports to the listener. Times, on N events of the
notes' shape for channels that are not ours (ChannelVarset, ChannelStateChange, ChannelDestroyed,
…), with 200 calls of ours being followed:
  1. baseline: `json.loads` of each message alone (the floor: it has to be parsed);
  2. `Listener.handle` of each message;
alternately, best of 5 rounds each, and prints events/s of each, their ratio, and the database
queries step 2 made (expected: 0).
"""

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "communications_project.settings")
os.environ.setdefault("DEBUG", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from telephony.ari import AriConfig
    from telephony.listener import Listener

    settings.ASTERISK_ARI_URL = settings.ASTERISK_ARI_URL or "http://127.0.0.1:9/ari"  # never reached
    template = json.loads((ROOT / "telephony/tests/data/ari_channel_state_change_up.json").read_text())
    kinds = ["ChannelVarset", "ChannelStateChange", "ChannelDialplan", "ChannelDestroyed", "DeviceStateChanged"]
    messages = []
    for number in range(args.events):
        event = copy.deepcopy(template)
        event["type"] = kinds[number % len(kinds)]
        event["channel"]["id"] = f"1795807965.{number}"
        messages.append(json.dumps(event))

    listener = Listener(config=AriConfig.from_settings())
    listener.channels = {f"ours-{number}": None for number in range(200)}
    baseline = handled = float("inf")
    query_count = 0
    for _ in range(args.rounds):  # alternate the two and keep each one's best: the machine is shared
        started = time.perf_counter()
        for message in messages:
            json.loads(message)
        baseline = min(baseline, time.perf_counter() - started)
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            for message in messages:
                listener.handle(message)
            handled = min(handled, time.perf_counter() - started)
        query_count += len(queries.captured_queries)

    print(f"json.loads (baseline)  {args.events / baseline:>10,.0f} events/s")
    print(f"Listener.handle        {args.events / handled:>10,.0f} events/s  ratio {baseline / handled:.2f}")
    print(f"queries                {query_count}")


if __name__ == "__main__":
    main()
