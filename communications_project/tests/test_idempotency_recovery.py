"""A claim whose request died with its database connection is taken over within seconds.

During a PostgreSQL restart a create can be cut off after its Idempotency-Key was claimed: the
request cannot release the claim (the database is gone), but the row lock its transaction held
is released with the connection. A retry may then run it again, not wait two minutes.
"""

import datetime as dt
import uuid

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from communications.models import Communication
from communications_project.idempotency import _claim, _fingerprint, _hold
from communications_project.models import IdempotencyKey

SCOPE = "POST /v2/communications"


def new_body() -> dict:
    return {"method": "visit", "kind": "actual", "direction": "inbound", "client_uuid": str(uuid.uuid4())}


def dead_claim(user, body: dict, *, age: dt.timedelta) -> IdempotencyKey:
    """What a request leaves behind when its connection dies after claiming the key."""
    now = timezone.now()
    return IdempotencyKey.objects.create(
        user=user,
        scope=SCOPE,
        key="k-1",
        request_hash=_fingerprint(body),
        date_created=now - age,
        date_expires=now + dt.timedelta(hours=24),
    )


def post(api, body):
    return api.post("/v2/communications", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")


@pytest.mark.django_db
def test_a_retry_takes_over_a_claim_whose_request_died(api):
    body = new_body()
    dead_claim(api.user, body, age=dt.timedelta(seconds=3))

    response = post(api, body)

    assert response.status_code == 201
    assert Communication.objects.count() == 1
    claim = IdempotencyKey.objects.get(key="k-1")
    assert claim.response_status == 201 and claim.response_body["uuid"] == response.json()["uuid"]
    assert post(api, body).json() == response.json()  # and from now on it replays


@pytest.mark.django_db
def test_a_claim_made_a_moment_ago_is_still_in_flight(api):
    body = new_body()
    dead_claim(api.user, body, age=dt.timedelta(milliseconds=100))

    response = post(api, body)

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_request_in_flight"
    assert Communication.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_claim_held_by_a_running_request_is_in_flight_however_old(api):
    body = new_body()
    claim = dead_claim(api.user, body, age=dt.timedelta(seconds=60))
    dsn = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k not in ("cursor_factory", "context")}) as other:
        # Another request's transaction is working under this claim.
        table = IdempotencyKey._meta.db_table
        other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", (claim.pk,))

        response = post(api, body)

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_request_in_flight"
    assert Communication.objects.count() == 0


@pytest.mark.django_db
def test_a_slow_request_whose_claim_was_taken_over_does_not_run(api):
    body = new_body()
    claim = _claim(user=api.user, scope=SCOPE, key="k-1", fingerprint=_fingerprint(body), locked_while_working=True)
    # A retry took it over while this request was stalled.
    IdempotencyKey.objects.filter(pk=claim.pk).update(date_created=timezone.now())

    assert _hold(claim) is False
