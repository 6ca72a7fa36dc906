"""manage.py telephony_events as a real process: it connects, beats, and leaves cleanly on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from telephony.models import EventListener

from .conftest import PASSWORD, USER

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sigterm_stops_the_listener_cleanly(ari_events, fake_ari, telephony_settings):
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url(),
        "ASTERISK_ARI_URL": telephony_settings.ASTERISK_ARI_URL,
        "ASTERISK_ARI_EVENTS_URL": ari_events.url,
        "ASTERISK_ARI_USERNAME": USER,
        "ASTERISK_ARI_PASSWORD": PASSWORD,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "telephony_events"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: EventListener.objects.filter(state="connected").exists() or process.poll() is not None)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "SIGTERM received, stopping" in stderr and "telephony events: stopped" in stderr
    assert "Traceback" not in stderr
    assert EventListener.objects.get().state == "stopped"

    status = subprocess.run(
        [sys.executable, "manage.py", "telephony_events", "--status"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert status.returncode == 1  # nobody is connected now: a monitoring check would alert
    assert ": stopped since " in status.stdout and "No telephony events listener is connected" in status.stderr


def test_without_ari_configured_the_command_refuses_to_start(telephony_settings):
    from django.core.management import CommandError, call_command

    telephony_settings.ASTERISK_ARI_URL = ""
    with pytest.raises(CommandError, match="ASTERISK_ARI_URL is not set"):
        call_command("telephony_events")
