"""GET and POST /v1/communications/id-translations (SPEC §4)."""

import threading
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from communications.tests.factories import CommunicationFactory
from conftest import AUTH_QUERIES
from id_translations.models import IdTranslation

pytestmark = pytest.mark.django_db
URL = "/v1/communications/id-translations"
PERMS = ("id_translations.view_idtranslation", "id_translations.add_idtranslation")


@pytest.fixture
def client(api_as):
    return api_as(*PERMS)


def pair(oracle_id: int, flora_uuid: uuid.UUID | None = None) -> IdTranslation:
    return IdTranslation.objects.create(flora_uuid=flora_uuid or uuid.uuid4(), oracle_id=oracle_id)


def codes(response):
    return [(e["code"], e["attr"]) for e in response.json()["errors"]]


def test_lookup_by_either_side_repeated_or_comma_separated(client):
    a, b = pair(101), pair(102)
    pair(103)  # not asked for
    missing = uuid.uuid4()
    response = client.get(f"{URL}?flora_uuid={a.flora_uuid},{missing}&oracle_id=102&oracle_id=999")
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"flora_uuid": str(a.flora_uuid), "oracle_id": 101},
            {"flora_uuid": str(b.flora_uuid), "oracle_id": 102},
        ],
        "not_found": {"flora_uuid": [str(missing)], "oracle_id": [999]},
    }


def test_lookup_of_a_hundred_values_of_each_side_in_one_query(client, django_assert_max_num_queries):
    stored = [pair(i) for i in range(1, 101)]
    ids = ",".join(str(p.oracle_id) for p in stored)
    uuids = ",".join(str(uuid.uuid4()) for _ in range(100))
    with django_assert_max_num_queries(1 + AUTH_QUERIES):
        response = client.get(URL, {"oracle_id": ids, "flora_uuid": uuids})
    assert len(response.json()["results"]) == 100
    assert len(response.json()["not_found"]["flora_uuid"]) == 100


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ("", "flora_uuid"),
        ("?flora_uuid=nope", "flora_uuid"),
        ("?oracle_id=12a", "oracle_id"),
        ("?oracle_id=0", "oracle_id"),
        ("?oracle_id=-5", "oracle_id"),
        ("?oracle_id=99999999999999999999", "oracle_id"),
        ("?oracle_id=%D9%A1%D9%A2", "oracle_id"),  # Arabic-Indic "١٢": int() would read it as 12
        ("?oracle_id=1_2", "oracle_id"),  # int() would read it as 12
        ("?oracle_id=" + ",".join(str(i) for i in range(1, 102)), "oracle_id"),
        ("?flora_uuid=" + "&flora_uuid=".join([str(uuid.uuid4())] * 101), "flora_uuid"),  # duplicates count
        ("?id=5", "id"),
    ],
)
def test_lookup_refuses_no_filter_bad_values_and_too_many(client, query, attr):
    response = client.get(URL + query)
    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == [attr]


def test_create_one_pair_is_201_then_200_when_repeated(client):
    body = {"flora_uuid": str(uuid.uuid4()), "oracle_id": 555}
    first = client.post(URL, body, format="json")
    again = client.post(URL, body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() == body
    assert IdTranslation.objects.count() == 1
    assert IdTranslation.objects.get().created_by == client.user


def test_create_a_list(client):
    existing = pair(1)
    body = [{"flora_uuid": str(existing.flora_uuid), "oracle_id": 1}, {"flora_uuid": str(uuid.uuid4()), "oracle_id": 2}]
    response = client.post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json() == body
    assert IdTranslation.objects.count() == 2


@pytest.mark.parametrize("side", ["uuid", "oracle_id"])
def test_contradicting_an_existing_pair_is_409_with_it_and_creates_nothing(client, side):
    existing = pair(7)
    clash = (
        {"flora_uuid": str(existing.flora_uuid), "oracle_id": 8}
        if side == "uuid"
        else {"flora_uuid": str(uuid.uuid4()), "oracle_id": 7}
    )
    fresh = {"flora_uuid": str(uuid.uuid4()), "oracle_id": 9}
    response = client.post(URL, [fresh, clash], format="json")
    assert response.status_code == 409
    assert codes(response) == [("translation_conflict", None)]
    assert response.json()["conflicts"] == [{"flora_uuid": str(existing.flora_uuid), "oracle_id": 7}]
    assert IdTranslation.objects.count() == 1  # `fresh` was not created either


def test_contradiction_inside_one_request_is_409(client):
    flora = str(uuid.uuid4())
    response = client.post(
        URL, [{"flora_uuid": flora, "oracle_id": 1}, {"flora_uuid": flora, "oracle_id": 2}], format="json"
    )
    assert response.status_code == 409
    assert len(response.json()["conflicts"]) == 2
    assert not IdTranslation.objects.exists()


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"flora_uuid": "x", "oracle_id": 1}, "flora_uuid"),
        ({"flora_uuid": str(uuid.uuid4()), "oracle_id": 0}, "oracle_id"),
        ({"flora_uuid": str(uuid.uuid4()), "oracle_id": "1e3"}, "oracle_id"),
        ({"flora_uuid": str(uuid.uuid4()), "oracle_id": 2**63}, "oracle_id"),
        ({"flora_uuid": str(uuid.uuid4())}, "oracle_id"),
        ({"flora_uuid": str(uuid.uuid4()), "oracle_id": 1, "note": "x"}, "note"),
        ([], "non_field_errors"),
        ([{"flora_uuid": str(uuid.uuid4()), "oracle_id": i} for i in range(1, 1002)], "non_field_errors"),
        ("just a string", "non_field_errors"),
    ],
)
def test_create_refuses_bad_input(client, body, attr):
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == [attr]
    assert not IdTranslation.objects.exists()


def test_permissions(api_as):
    assert APIClient().get(URL, {"oracle_id": 1}).status_code == 401
    reader = api_as("id_translations.view_idtranslation")
    assert reader.get(URL, {"oracle_id": 1}).status_code == 200
    assert reader.post(URL, {"flora_uuid": str(uuid.uuid4()), "oracle_id": 1}, format="json").status_code == 403


def test_full_view_shows_the_oracle_id_without_extra_queries(api, django_assert_max_num_queries):
    communications = CommunicationFactory.create_batch(5)
    for number, communication in enumerate(communications, start=1):
        pair(1000 + number, communication.uuid)
    one = api.get(f"/v2/communications/{communications[0].uuid}").json()
    assert one["oracle_id"] == 1001
    with django_assert_max_num_queries(1 + AUTH_QUERIES):
        page = api.get("/v3/communications", {"view": "full"}).json()["results"]
    assert sorted(c["oracle_id"] for c in page) == [1001, 1002, 1003, 1004, 1005]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creates_of_the_same_pair_never_fail_or_duplicate(user_with_perms, api_key_for):
    user = user_with_perms(*PERMS)
    token = api_key_for(user)
    body = {"flora_uuid": str(uuid.uuid4()), "oracle_id": 31337}
    barrier = threading.Barrier(8)
    statuses = []

    def run():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait()
            statuses.append(client.post(URL, body, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 7 + [201]
    assert IdTranslation.objects.count() == 1


def test_write_answers_show_the_oracle_id_too(api):
    communication = CommunicationFactory()
    pair(4242, communication.uuid)
    response = api.patch(f"/v2/communications/{communication.uuid}", {"subject": "x"}, format="json")
    assert response.status_code == 200
    assert response.json()["oracle_id"] == 4242
