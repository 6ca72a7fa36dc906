"""The change feed over HTTP: an event per change, in the change's transaction, served in an order
that never skips (docs/EVENTS.md).

These tests commit (transaction=True): the feed serves only what every running transaction has
ended before, so an event written inside a test's own wrapping transaction would never show.
"""

import datetime as dt
import io
import threading
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communications import events, services
from communications.api.serializers import CommunicationFullSerializer
from communications.models import Communication, CommunicationEvent, EventMark, EventRelay, Kind, Source, Status
from conftest import ALL_COMMUNICATION_PERMS, AUTH_QUERIES
from id_translations.models import IdTranslation

from .factories import CommunicationFactory, UserFactory
from .feed import FEED, FEED_PERMS, read_all, validate, wait_for

TX = pytest.mark.django_db(transaction=True, serialized_rollback=True)
pytestmark = TX

PLANNED = {
    "method": "call",
    "kind": "planned",
    "direction": "outbound",
    "details": {"phone": "+79161234567"},
}


@pytest.fixture
def client(api_as):
    return api_as(*ALL_COMMUNICATION_PERMS, *FEED_PERMS)


def _create(client, **fields) -> dict:
    body = {
        **PLANNED,
        "client_uuid": str(uuid.uuid4()),
        "date_planned_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        **fields,
    }
    response = client.post("/v2/communications", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def test_every_kind_of_change_writes_one_event_of_its_type_and_a_no_op_writes_none(client):
    _, start = read_all(client)
    created = _create(client)
    url = f"/v2/communications/{created['uuid']}"
    _ok(client.patch(url, {"subject": "Тест-драйв"}, format="json"))
    _ok(client.patch(url, {"subject": "Тест-драйв"}, format="json"))  # no change: no event
    _ok(client.patch(f"{url}/start", {}, format="json"))
    _ok(client.patch(f"{url}/close", {"result": "Купил"}, format="json"))
    cancelled = _create(client)
    _ok(client.post(f"/v2/communications/{cancelled['uuid']}/cancel", {"cancel_reason": "Перенёс"}, format="json"))
    failed = _create(client)
    _ok(client.patch(f"/v2/communications/{failed['uuid']}/failed", {"fail_reason": "busy"}, format="json"))
    _ok(client.delete(f"/v2/communications/{failed['uuid']}"), 204)
    services.communication_restore(uuid=failed["uuid"], actor=client.user, source=Source.ADMIN)

    seen, _ = wait_for(client, 10, after=start)

    assert [(e["subject"], e["type"], e["data"]["version"]) for e in seen] == [
        (created["uuid"], "communication.created", 1),
        (created["uuid"], "communication.updated", 2),
        (created["uuid"], "communication.status_changed", 3),
        (created["uuid"], "communication.status_changed", 4),
        (cancelled["uuid"], "communication.created", 1),
        (cancelled["uuid"], "communication.status_changed", 2),
        (failed["uuid"], "communication.created", 1),
        (failed["uuid"], "communication.status_changed", 2),
        (failed["uuid"], "communication.deleted", 3),
        (failed["uuid"], "communication.restored", 4),
    ]
    update = seen[1]["data"]
    assert update["changes"] == {"subject": ["", "Тест-драйв"]}
    assert (update["source"], update["actor"], update["transition"]) == ("api", client.user.username, None)
    assert seen[3]["data"]["transition"] == {"name": "close", "from": "in_work", "to": "done"}
    assert seen[3]["data"]["changes"]["result"] == ["", "Купил"]
    assert seen[7]["data"]["transition"] == {"name": "fail", "from": "created", "to": "failed"}
    assert (seen[9]["data"]["source"], seen[9]["data"]["communication"]["status"]) == ("admin", "failed")
    assert len({e["id"] for e in seen}) == 10
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)
    assert CommunicationEvent.objects.count() == 10


def test_an_events_data_is_the_full_view_get_answers(client):
    """After every kind of write, from every writer, including oracle_id and both usernames."""
    created = _create(client, employee_uuid=str(uuid.uuid4()), dealer_uuid=str(uuid.uuid4()))
    url = f"/v2/communications/{created['uuid']}"
    IdTranslation.objects.create(flora_uuid=created["uuid"], oracle_id=4242)
    other = UserFactory()
    services.communication_update(
        uuid=created["uuid"],
        actor=other,
        source=Source.ADMIN,
        data={"comment": "Перезвонить", "date_planned_finish": timezone.now() + dt.timedelta(days=2)},
    )
    _ok(client.patch(f"{url}/start", {}, format="json"))
    services.communication_record_call(uuid=created["uuid"], details={"call_id": "c-1", "duration_sec": 42})
    _ok(client.patch(f"{url}/close", {}, format="json"))

    seen, _ = wait_for(client, 5, subject=created["uuid"])

    assert [e["data"]["version"] for e in seen] == [1, 2, 3, 4, 5]
    assert seen[0]["data"]["communication"] == created  # the answer to the POST is GET's full view
    assert seen[1]["data"]["communication"]["oracle_id"] == 4242
    assert seen[1]["data"]["communication"]["updated_by"] == other.username
    assert seen[3]["data"]["source"] == "telephony" and seen[3]["data"]["actor"] is None
    assert seen[3]["data"]["changes"]["details"][1] == {"phone": "+79161234567", "call_id": "c-1", "duration_sec": 42}
    assert seen[-1]["data"]["communication"] == _ok(client.get(url))
    assert list(seen[-1]["data"]["communication"]) == list(CommunicationFullSerializer.Meta.fields)
    assert list(events.VIEW) == list(CommunicationFullSerializer.Meta.fields)


def test_each_events_data_equals_get_at_its_version(client):
    created = _create(client)
    url = f"/v2/communications/{created['uuid']}"
    answers = [created]
    answers.append(_ok(client.patch(url, {"details": {"phone": "+79161112233"}, "subject": "A"}, format="json")))
    answers.append(_ok(client.patch(f"{url}/failed", {"fail_reason": "no_answer", "comment": "3 раза"}, format="json")))

    seen, _ = wait_for(client, 3, subject=created["uuid"])

    assert [e["data"]["communication"] for e in seen] == answers


def test_a_change_that_rolls_back_leaves_no_event_and_a_refused_one_writes_none(client):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.communication_update(uuid=communication.uuid, actor=None, source=Source.API, data={"subject": "x"})
        assert CommunicationEvent.objects.filter(subject=communication.uuid).count() == 1  # written with it...
        raise RuntimeError("the request failed after the write")
    assert not CommunicationEvent.objects.filter(subject=communication.uuid).exists()  # ...and gone with it
    closed = CommunicationFactory(kind=Kind.PLANNED, status=Status.DONE)
    response = client.patch(f"/v2/communications/{closed.uuid}/close", {}, format="json")
    assert response.status_code == 409
    assert not CommunicationEvent.objects.exists()
    assert client.get(FEED).json()["results"] == []


def _in_thread(work):
    """Run `work(step)` in a thread with its own connection; `step` hands control back and forth."""
    go, done = threading.Event(), threading.Event()
    errors = []

    def step():
        done.set()
        go.wait(30)
        go.clear()

    def run():
        try:
            work(step)
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()

    def resume():
        done.clear()
        go.set()

    return thread, done, resume, errors


def test_a_transaction_that_commits_late_is_never_skipped(client):
    """The hole of date_updated_after: B commits while A, started first, is open. The feed serves
    neither until A ends, then both, A first: a consumer that had read up to B would skip A."""
    a, b = CommunicationFactory(kind=Kind.PLANNED), CommunicationFactory(kind=Kind.PLANNED)
    _, start = read_all(client)

    def slow_writer(step):
        with transaction.atomic():
            services.communication_update(uuid=a.uuid, actor=None, source=Source.API, data={"subject": "A"})
            step()  # open, holding its transaction ID

    thread, paused, resume, errors = _in_thread(slow_writer)
    assert paused.wait(30)
    services.communication_update(uuid=b.uuid, actor=None, source=Source.API, data={"subject": "B"})
    assert CommunicationEvent.objects.filter(subject=b.uuid).exists()  # committed...
    served, after = read_all(client, start)
    assert [e["subject"] for e in served] == []  # ...but not served while A may still commit before it
    resume()
    thread.join(30)
    assert not errors

    seen, _ = wait_for(client, 2, after=after)
    assert [e["subject"] for e in seen] == [str(a.uuid), str(b.uuid)]


def test_per_communication_the_feed_follows_the_version_even_when_a_transaction_began_before_the_lock(client):
    """A transaction that wrote elsewhere first (an older transaction ID), then waited for the row
    lock, still comes after the write it waited for."""
    first, shared = CommunicationFactory(kind=Kind.PLANNED), CommunicationFactory(kind=Kind.PLANNED)

    def batch(step):
        with transaction.atomic():
            services.communication_update(uuid=first.uuid, actor=None, source=Source.IMPORT, data={"subject": "1"})
            step()  # has its transaction ID now, older than the next writer's
            services.communication_update(uuid=shared.uuid, actor=None, source=Source.IMPORT, data={"comment": "2"})

    thread, paused, resume, errors = _in_thread(batch)
    assert paused.wait(30)
    services.communication_update(uuid=shared.uuid, actor=None, source=Source.API, data={"subject": "later xid"})
    resume()
    thread.join(30)
    assert not errors

    seen, _ = wait_for(client, 2, subject=str(shared.uuid))
    assert [(e["data"]["version"], e["data"]["source"]) for e in seen] == [(2, "api"), (3, "import")]
    all_events, _ = read_all(client)
    assert [e["sequence"] for e in all_events] == sorted(e["sequence"] for e in all_events)


def test_filters_by_type_and_subject(client):
    one, two = _create(client), _create(client)
    _ok(client.patch(f"/v2/communications/{one['uuid']}", {"subject": "x"}, format="json"))
    _ok(client.patch(f"/v2/communications/{two['uuid']}/close", {}, format="json"))
    wait_for(client, 4)

    by_type, _ = read_all(client, type="communication.updated,communication.status_changed")
    assert [(e["subject"], e["type"]) for e in by_type] == [
        (one["uuid"], "communication.updated"),
        (two["uuid"], "communication.status_changed"),
    ]
    by_subject, _ = read_all(client, subject=[two["uuid"]])
    assert [e["type"] for e in by_subject] == ["communication.created", "communication.status_changed"]
    both, _ = read_all(client, subject=f"{one['uuid']},{two['uuid']}", type="communication.created")
    assert [e["subject"] for e in both] == [one["uuid"], two["uuid"]]


def test_pages_follow_next_and_now_starts_from_now(client):
    created = [_create(client) for _ in range(5)]
    wait_for(client, 5)
    first = _ok(client.get(FEED, {"page_size": 2}))
    assert [e["subject"] for e in first["results"]] == [c["uuid"] for c in created[:2]] and first["has_more"]
    assert first["next"] == first["results"][-1]["sequence"]
    rest, _ = read_all(client, first["next"], page_size=2)
    assert [e["subject"] for e in rest] == [c["uuid"] for c in created[2:]]

    now = first["now"]
    later = _create(client)
    seen, _ = wait_for(client, 1, after=now)
    assert [e["subject"] for e in seen] == [later["uuid"]]
    # An event's own sequence is a cursor too: after the third event come the fourth and on.
    after_third, _ = read_all(client, first["results"][0]["sequence"])
    assert [e["subject"] for e in after_third][:4] == [c["uuid"] for c in created[1:5]]


@pytest.mark.parametrize(
    ("params", "attr", "code"),
    [
        ({"after": "xyz"}, "after", "invalid"),
        ({"after": "0" * 31}, "after", "invalid"),
        ({"after": "A" * 32}, "after", "invalid"),
        ({"after": "f" * 32}, "after", "invalid"),  # beyond a bigint
        ({"after": "0" * 31 + "\x00"}, "after", "invalid"),
        ({"type": "communication.exploded"}, "type", "invalid_choice"),
        ({"type": "created"}, "type", "invalid_choice"),
        ({"subject": "not-a-uuid"}, "subject", "invalid"),
        ({"subject": ",".join(str(uuid.uuid4()) for _ in range(101))}, "subject", "max_length"),
        ({"page_size": "0"}, "page_size", "invalid"),
        ({"page_size": "1001"}, "page_size", "invalid"),
        ({"page_size": "١٠"}, "page_size", "invalid"),
        ({"cursor": "abc"}, "cursor", "unknown_parameter"),
        ({"date_updated_after": "2026-01-01"}, "date_updated_after", "unknown_parameter"),
    ],
)
def test_bad_parameters_are_400_in_the_standard_shape(client, params, attr, code):
    response = client.get(FEED, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert [(e["attr"], e["code"]) for e in body["errors"]] == [(attr, code)]


def test_a_cursor_older_than_retention_is_410_with_what_to_do(client):
    created = [_create(client) for _ in range(3)]
    seen, _ = wait_for(client, 3)
    CommunicationEvent.objects.update(time=timezone.now() - dt.timedelta(days=31))

    deleted = events.events_purge(before=timezone.now() - dt.timedelta(days=30), batch_size=2)

    assert deleted == 3 and not CommunicationEvent.objects.exists()
    mark = EventMark.objects.get(name="purged")
    assert f"{mark.txid:016x}{mark.event:016x}" == seen[-1]["sequence"]
    response = client.get(FEED, {"after": seen[0]["sequence"]})
    assert response.status_code == 410
    body = response.json()
    assert body["errors"][0]["code"] == "cursor_expired"
    assert "resynchronise" in body["errors"][0]["detail"].lower()
    assert events.CURSOR_RE.fullmatch(body["now"])
    # The last purged position, the start and `now` itself are fine.
    assert _ok(client.get(FEED, {"after": seen[-1]["sequence"]}))["results"] == []
    assert _ok(client.get(FEED))["results"] == []
    later = _create(client)
    again, _ = wait_for(client, 1, after=body["now"])
    assert [e["subject"] for e in again] == [later["uuid"]] and created


def test_purge_keeps_what_is_recent_and_what_the_relay_has_not_published(client):
    for _ in range(4):
        _create(client)
    seen, _ = wait_for(client, 4)
    old = timezone.now() - dt.timedelta(days=40)
    CommunicationEvent.objects.filter(event_id__in=[e["id"] for e in seen[:3]]).update(time=old)
    published = events.Position.parse(seen[0]["sequence"])

    assert events.events_purge(before=timezone.now() - dt.timedelta(days=30), batch_size=10, keep_after=published) == 1
    assert events.events_purge(before=timezone.now() - dt.timedelta(days=30), batch_size=10) == 2
    left, _ = read_all(client)
    assert [e["id"] for e in left] == [seen[3]["id"]]


@pytest.mark.parametrize("page_size", [1, 1000])
def test_a_page_costs_two_queries_whatever_its_size(client, page_size):
    for _ in range(12):
        CommunicationFactory(kind=Kind.PLANNED)
    for communication in Communication.objects.all():
        services.communication_update(uuid=communication.uuid, actor=None, source=Source.API, data={"subject": "x"})
    wait_for(client, 12)
    with CaptureQueriesContext(connection) as queries:
        body = _ok(client.get(FEED, {"page_size": page_size}))
    assert len(body["results"]) == min(page_size, 12)
    assert len(queries) == 2 + AUTH_QUERIES, [q["sql"] for q in queries]


def test_events_of_the_api_validate_against_the_json_schema(client):
    created = _create(client, kind="actual", date_planned_start=None, direction="inbound")
    _ok(client.patch(f"/v2/communications/{created['uuid']}/close", {"result": "ok"}, format="json"))
    seen, _ = wait_for(client, 2)
    for event in seen:
        validate(event)  # wait_for validated each already; here once more, by name
    assert seen[0]["specversion"] == "1.0" and seen[0]["source"] and seen[0]["time"].endswith("Z")
    assert seen[0]["datacontenttype"] == "application/json"


def test_purge_events_command_honours_the_retention_and_the_relays_position(client, settings):
    settings.EVENTS_RETENTION_DAYS = 30
    for _ in range(3):
        _create(client)
    seen, _ = wait_for(client, 3)
    CommunicationEvent.objects.update(time=timezone.now() - dt.timedelta(days=31))
    first = events.Position.parse(seen[0]["sequence"])
    EventRelay.objects.create(
        name="communications", txid=first.txid, event=first.id, state="stopped", state_since=timezone.now(),
        beat_at=timezone.now(),
    )  # fmt: skip
    out = io.StringIO()

    call_command("purge_events", "--batch-size", "1", stdout=out)
    assert "Deleted 1 events" in out.getvalue()
    call_command("purge_events", "--include-unpublished", stdout=out)
    assert "Deleted 2 events" in out.getvalue() and not CommunicationEvent.objects.exists()
    with pytest.raises(CommandError):
        call_command("purge_events", "--batch-size", "0")
