"""Races and retries through the API: one winner, one row, the rest told why."""

import datetime as dt
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from communications.models import Communication, CommunicationHistory, Kind
from communications_project.models import IdempotencyKey
from credentials.services import api_key_create

from .factories import CommunicationFactory

TX = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_create(user=user, name='tests')[1]}")
    return client


def in_parallel(calls) -> list:
    """Run each call in its own thread and DB connection, released together; return responses."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def new_body() -> dict:
    return {
        "method": "visit",
        "kind": "planned",
        "direction": "inbound",
        "client_uuid": str(uuid.uuid4()),
        "date_planned_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
    }


@TX
def test_twenty_racing_transitions_have_one_winner(api):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    url = f"/v2/communications/{communication.uuid}"
    calls = []
    for i in range(20):
        client = _client_for(api.user)
        if i % 3 == 0:
            calls.append(lambda c=client: c.patch(f"{url}/close", {}, format="json"))
        elif i % 3 == 1:
            calls.append(lambda c=client: c.patch(f"{url}/failed", {"fail_reason": "busy"}, format="json"))
        else:
            calls.append(lambda c=client: c.post(f"{url}/cancel", {}, format="json"))

    responses = in_parallel(calls)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19
    winner = next(r for r in responses if r.status_code == 200).json()
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == winner["status"] and row.version == 2
    assert CommunicationHistory.objects.filter(communication=row).count() == 1
    assert all(r.json()["errors"][0]["code"] == "transition_not_allowed" for r in responses if r.status_code == 409)


@TX
def test_two_patches_with_the_same_if_match_one_wins(api):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    url = f"/v2/communications/{communication.uuid}"
    clients = [_client_for(api.user), _client_for(api.user)]
    responses = in_parallel(
        [
            lambda: clients[0].patch(url, {"subject": "A"}, format="json", HTTP_IF_MATCH='"1"'),
            lambda: clients[1].patch(url, {"subject": "B"}, format="json", HTTP_IF_MATCH='"1"'),
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert Communication.objects.get(pk=communication.pk).subject == winner["subject"]


@TX
def test_same_create_retried_ten_times_in_parallel_makes_one_row(api):
    body = new_body()
    clients = [_client_for(api.user) for _ in range(10)]
    responses = in_parallel(
        [
            lambda c=c: c.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="click-42")
            for c in clients
        ]
    )
    assert Communication.objects.count() == 1
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {201, 409}
    uuids = {r.json()["uuid"] for r in created}
    assert uuids == {str(Communication.objects.get().uuid)}
    for r in responses:
        if r.status_code == 409:
            assert r.json()["errors"][0]["code"] == "idempotency_request_in_flight"


@pytest.mark.django_db
def test_retry_with_the_same_key_replays_the_first_answer(api):
    body = new_body()
    first = api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert Communication.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422(api):
    api.post("/v2/communications", new_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = api.post("/v2/communications", new_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert Communication.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_to_the_caller(api, api_as):
    other = api_as("communications.add_communication", "communications.view_communication")
    body = new_body()
    api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = other.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert Communication.objects.count() == 2


@pytest.mark.django_db
def test_a_refused_request_releases_its_key(api):
    bad = {**new_body(), "method": "post"}
    first = api.post("/v2/communications", bad, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert first.status_code == 400
    assert not IdempotencyKey.objects.exists()
    again = api.post("/v2/communications", bad, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert again.status_code == 400


@pytest.mark.django_db
def test_expired_key_runs_again_and_purge_removes_expired(api):
    body = new_body()
    api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(date_expires=timezone.now() - dt.timedelta(seconds=1))
    response = api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert response.status_code == 201 and Communication.objects.count() == 2

    IdempotencyKey.objects.update(date_expires=timezone.now() - dt.timedelta(seconds=1))
    call_command("purge_idempotency_keys")
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "ключ"])
def test_malformed_key_is_400(api, key):
    response = api.post("/v2/communications", new_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert not Communication.objects.exists()
