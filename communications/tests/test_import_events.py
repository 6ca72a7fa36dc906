"""The importer's creates and updates in the change feed: COPYed with their batch, as GET shows
them, and none with --no-events (docs/IMPORT.md, docs/EVENTS.md)."""

import uuid

import pytest
from django.db import connection

from communications import transfer
from communications.models import CommunicationEvent
from conftest import ALL_COMMUNICATION_PERMS
from id_translations.models import IdTranslation

from .feed import FEED_PERMS, read_all, wait_for
from .test_import import run

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def client(api_as):
    return api_as(*ALL_COMMUNICATION_PERMS, *FEED_PERMS)


@pytest.mark.parametrize("batch_size", [20_000, 2])
def test_imported_communications_are_created_events_equal_to_get(client, tmp_path, batch_size):
    status, _, _ = run("good.csv", tmp_path, batch_size=batch_size)
    assert status == 0

    seen, _ = wait_for(client, 5)

    oracle_ids = dict(IdTranslation.objects.values_list("flora_uuid", "oracle_id"))
    assert len(seen) == 5 and {e["type"] for e in seen} == {"communication.created"}
    for event in seen:
        communication = event["data"]["communication"]
        assert communication == client.get(f"/v2/communications/{event['subject']}").json()
        assert communication["oracle_id"] == oracle_ids[uuid.UUID(event["subject"])]
        assert (event["data"]["source"], event["data"]["actor"], event["data"]["version"]) == ("import", None, 1)
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)


def test_update_existing_writes_an_updated_event_after_the_created_one(client, tmp_path):
    run("good.csv", tmp_path)
    status, summary, _ = run("changed.csv", tmp_path, "--update-existing")
    assert status == 0 and "updated: 2" in summary

    seen, _ = wait_for(client, 7)

    updates = [e for e in seen if e["type"] == "communication.updated"]
    assert len(updates) == 2
    for event in updates:
        assert event["data"]["version"] == 2 and event["data"]["source"] == "import"
        assert event["data"]["communication"] == client.get(f"/v2/communications/{event['subject']}").json()
        created = next(e for e in seen if e["subject"] == event["subject"] and e["type"] == "communication.created")
        assert created["sequence"] < event["sequence"]
    by_subject = {e["subject"]: e for e in updates}
    assert any(
        e["data"]["changes"].get("subject") == ["Тест-драйв", "Тест-драйв (перенесён)"] for e in by_subject.values()
    )


def test_no_events_imports_the_same_and_writes_none(client, tmp_path):
    status, summary, _ = run("good.csv", tmp_path, "--no-events")
    assert status == 0 and "created: 5" in summary
    assert not CommunicationEvent.objects.exists()
    assert read_all(client)[0] == []


def test_a_batch_that_fails_leaves_no_event(client, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr(transfer.loader.Loader, "_sort_out", broken)
    run("good.csv", tmp_path)  # the fast path first: fine
    with pytest.raises(RuntimeError):
        run("good.csv", tmp_path, batch_size=2)  # stored already: the set-based path, which breaks
    assert CommunicationEvent.objects.count() == 5
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM communications_communicationevent WHERE txid > 0")
        assert cursor.fetchone() == (5,)  # the column's default gave them their transaction
