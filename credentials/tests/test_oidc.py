"""Bearer tokens from the identity provider, against a real HTTP provider of the test's own."""

import base64
import json
import time
import uuid

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from communications.tests.factories import CommunicationFactory, UserFactory
from conftest import AUTH_QUERIES
from credentials.authentication import BearerAuthentication
from credentials.models import ExternalIdentity

from .conftest import AUDIENCE, SigningKey

pytestmark = pytest.mark.django_db

LIST = "/v3/communications"


def get(token: str, url: str = LIST):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(url)


def assert_refused(response, code: str, description: str):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["type"] == "client_error"
    assert [(e["code"], e["attr"]) for e in body["errors"]] == [(code, None)]
    assert description in body["errors"][0]["detail"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="communications", error="invalid_token", error_description="')
    assert description in challenge


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_is_accepted_and_its_employee_made_without_a_password(provider):
    communication = CommunicationFactory()
    response = get(
        provider.token(sub="ivanov", groups=["crm-operators", "some-other-app"]),
        f"/v2/communications/{communication.uuid}",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["uuid"] == str(communication.uuid)
    user = get_user_model().objects.get(username="ivanov")
    assert not user.has_usable_password()
    assert (user.is_staff, user.is_superuser, user.is_active) == (False, False, True)
    assert set(user.groups.values_list("name", flat=True)) == {"Operators"}  # unmapped groups grant nothing
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "ivanov")
    assert identity.date_last_seen is not None


def test_the_token_maps_to_its_user_groups_and_dealerships(provider):
    dealers = [str(uuid.uuid4()), str(uuid.uuid4())]
    token = provider.token(sub="petrova", groups=["crm-operators"], dealer_uuids=dealers)
    request = Request(APIRequestFactory().get(LIST, HTTP_AUTHORIZATION=f"Bearer {token}"))
    user, employee = BearerAuthentication().authenticate(request)
    assert user.username == "petrova"
    assert employee.subject == "petrova"
    assert employee.groups == frozenset({"Operators"})
    assert employee.dealer_uuids == frozenset(uuid.UUID(d) for d in dealers)
    assert employee.expires_at == jwt.decode(token, options={"verify_signature": False})["exp"]


def test_groups_follow_each_token_and_groups_given_in_the_admin_stay(provider):
    auditors = Group.objects.create(name="Auditors")
    local = Group.objects.create(name="Given in the admin")
    communication = CommunicationFactory()
    url = f"/v2/communications/{communication.uuid}"
    assert get(provider.token(groups=["crm-operators"]), url).status_code == 200
    user = get_user_model().objects.get(username="ivanov")
    user.groups.add(local)
    # The provider takes the role away and gives another: the next request has the new groups.
    response = get(provider.token(groups=["crm-auditors"]), url)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert set(user.groups.all()) == {auditors, local}
    assert get(provider.token(groups=None), url).status_code == 403  # no groups claim: no mapped group
    assert set(user.groups.all()) == {local}
    assert get(provider.token(groups=["crm-operators"]), url).status_code == 200


def test_a_known_employee_costs_one_query(provider, django_assert_num_queries):
    communication = CommunicationFactory()
    url = f"/v2/communications/{communication.uuid}"
    # "crm-auditors" maps to a group that does not exist here: ignored, not written on every request.
    groups = ["crm-operators", "crm-auditors"]
    assert get(provider.token(groups=groups), url).status_code == 200  # first sight: the user is made
    assert get(provider.token(groups=groups, jti="2"), url).status_code == 200
    with django_assert_num_queries(1 + AUTH_QUERIES):
        assert get(provider.token(groups=groups, jti="3"), url).status_code == 200
    assert list(get_user_model().objects.get(username="ivanov").groups.values_list("name", flat=True)) == ["Operators"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_employees_first_requests_at_once_make_one_user(provider):
    import threading

    from django.db import connection

    token = provider.token(sub="sidorov")
    get(provider.token(sub="warm-up"))  # the keys fetched: the race is on the user, not the JWKS
    barrier, statuses = threading.Barrier(6), []

    def run():
        try:
            barrier.wait()
            statuses.append(get(token).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert get_user_model().objects.filter(username="sidorov").count() == 1
    assert ExternalIdentity.objects.filter(subject="sidorov").count() == 1
    assert list(get_user_model().objects.get(username="sidorov").groups.values_list("name", flat=True)) == ["Operators"]


def test_es256_tokens_are_accepted(provider):
    provider.keys.append(SigningKey("ES256"))
    assert get(provider.token(key=provider.keys[1])).status_code == 200


def test_the_jwks_is_fetched_once_for_many_requests(provider):
    for number in range(25):
        assert get(provider.token(sub=f"employee{number % 3}")).status_code == 200
    assert provider.hits == {"discovery": 1, "jwks": 1}


def test_rotated_keys_are_fetched_once_and_the_old_key_is_then_unknown(provider, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 2.0
    old = provider.key
    old_token = provider.token()
    assert get(old_token).status_code == 200
    time.sleep(2.05)  # the provider rotates its keys some time after the service fetched them
    new = provider.rotate()
    assert get(old_token).status_code == 200  # the keys fetched are kept: no fetch per request
    assert provider.hits["jwks"] == 1
    for _ in range(5):
        assert get(provider.token(key=new)).status_code == 200
    assert provider.hits["jwks"] == 2  # one fetch for the new kid
    assert_refused(get(provider.token(key=old)), "token_key_unknown", "a key the identity provider does not publish")
    assert provider.hits["jwks"] == 2


def test_unknown_kids_fetch_the_keys_at_most_once_per_refresh_interval(provider):
    assert get(provider.token()).status_code == 200
    stranger = SigningKey()  # never published
    for _ in range(10):
        assert_refused(get(provider.token(key=stranger)), "token_key_unknown", "does not publish")
    assert provider.hits["jwks"] == 1  # fetched at start; the strangers came within the refresh interval


def test_an_unknown_kid_after_the_refresh_interval_fetches_again(provider, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 0.05
    assert get(provider.token()).status_code == 200
    time.sleep(0.1)
    assert_refused(get(provider.token(key=SigningKey())), "token_key_unknown", "does not publish")
    assert provider.hits["jwks"] == 2


def test_keys_past_their_lifespan_are_fetched_again(provider, settings):
    settings.OIDC_JWKS_CACHE_SECONDS = 0.05
    assert get(provider.token()).status_code == 200
    time.sleep(0.1)
    assert get(provider.token()).status_code == 200
    assert provider.hits["jwks"] == 2


# Every refusal the issue names, each its own 401.


def test_an_expired_token_is_refused(provider):
    now = int(time.time())
    response = get(provider.token(iat=now - 600, exp=now - 31))  # past the 30 s leeway
    assert_refused(response, "token_expired", "The token has expired.")


def test_a_token_expired_within_the_leeway_is_accepted(provider):
    now = int(time.time())
    assert get(provider.token(iat=now - 600, exp=now - 20)).status_code == 200


def test_a_token_not_yet_valid_is_refused(provider):
    now = int(time.time())
    assert_refused(get(provider.token(nbf=now + 120)), "token_not_yet_valid", "not valid yet")


def test_a_token_of_another_issuer_is_refused_without_asking_the_provider(provider):
    response = get(provider.token(iss="https://idp.example.com/realms/other"))
    assert_refused(response, "token_issuer_invalid", "not issued by this service's identity provider")
    assert provider.hits == {"discovery": 0, "jwks": 0}


def test_a_token_for_another_audience_is_refused(provider):
    assert_refused(get(provider.token(aud="another-service")), "token_audience_invalid", "not meant for this service")


def test_a_token_with_this_service_among_its_audiences_is_accepted(provider):
    assert get(provider.token(aud=["account", AUDIENCE])).status_code == 200


def test_an_unsigned_token_alg_none_is_refused(provider):
    header = _b64({"alg": "none", "typ": "JWT", "kid": provider.key.kid})
    token = f"{header}.{_b64(provider.claims())}."
    assert_refused(get(token), "token_algorithm_not_allowed", "RS256 or ES256 only")
    assert provider.hits["jwks"] == 0


def test_a_token_signed_with_hs256_and_the_public_key_is_refused(provider):
    from cryptography.hazmat.primitives import serialization

    public_pem = provider.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT itself refuses a PEM as an HMAC secret; sign by hand as an attacker would.
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': provider.key.kid})}.{_b64(provider.claims())}"
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    token = f"{signing_input}.{signature.rstrip(b'=').decode()}"
    assert_refused(get(token), "token_algorithm_not_allowed", "RS256 or ES256 only")


def test_a_tampered_payload_is_refused(provider):
    header, _payload, signature = _segments(provider.token(groups=["crm-operators"]))
    forged = _b64(provider.claims(sub="root", groups=["crm-operators", "crm-auditors"]))
    assert_refused(get(f"{header}.{forged}.{signature}"), "token_signature_invalid", "does not verify")
    assert not get_user_model().objects.filter(username="root").exists()


def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(provider):
    impostor = SigningKey()
    impostor.kid = provider.key.kid
    assert_refused(get(provider.token(key=impostor)), "token_signature_invalid", "does not verify")


def test_a_token_whose_algorithm_is_not_its_keys_is_refused(provider):
    ec_key = SigningKey("ES256")
    provider.keys.append(ec_key)
    token = provider.token(key=ec_key)
    header, payload, signature = _segments(token)
    relabelled = _b64({"alg": "RS256", "typ": "JWT", "kid": ec_key.kid})
    assert_refused(
        get(f"{relabelled}.{payload}.{signature}"), "token_algorithm_not_allowed", "not the one its signing key"
    )


def test_a_token_without_a_kid_is_refused(provider):
    token = jwt.encode(provider.claims(), provider.key.private, algorithm="RS256")
    assert_refused(get(token), "token_key_unknown", "names no signing key")


@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        ("x", "token_malformed"),
        ("a.b.c", "token_malformed"),
        ("e30.e30.", "token_algorithm_not_allowed"),  # {} as the header: no algorithm
        ("\u00e9t\u00e9", "authentication_failed"),  # not ASCII: no JWT, no key
        ("x" * 20_000, "token_malformed"),
    ],
)
def test_a_token_that_is_not_a_jwt_is_refused(provider, garbage, code):
    response = get(garbage)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == code
    assert provider.hits["jwks"] == 0


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": "x" * 151}, "sub"),
        ({"sub": 42}, "sub"),
        ({"groups": {"a": 1}}, "groups"),
        ({"dealer_uuids": ["not-a-uuid"]}, "dealer_uuids"),
        ({"dealer_uuids": [1, 2]}, "dealer_uuids"),
    ],
)
def test_a_token_missing_or_malforming_a_claim_is_refused(provider, claims, name):
    response = get(provider.token(**claims))
    assert_refused(response, "token_claim_invalid", f"lacks the {name} claim")
    assert not get_user_model().objects.filter(username="ivanov").exists()


def test_a_local_account_is_never_taken_over_by_a_token_naming_it(provider):
    local = UserFactory(username="admin", is_staff=True, is_superuser=True)
    response = get(provider.token(sub="admin"))
    assert_refused(response, "identity_conflict", "A local account already has this user name")
    assert not ExternalIdentity.objects.exists()
    local.refresh_from_db()
    assert local.is_superuser and local.groups.count() == 0


def test_a_deactivated_employee_is_refused(provider):
    assert get(provider.token()).status_code == 200
    get_user_model().objects.filter(username="ivanov").update(is_active=False)
    assert_refused(get(provider.token()), "authentication_failed", "User inactive or deleted.")


def test_bearer_tokens_are_refused_when_no_provider_is_configured(settings):
    settings.OIDC_ISSUER = ""
    response = get("eyJhbGciOiJSUzI1NiJ9.e30.x")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="communications", error="invalid_token"')


def test_without_credentials_the_challenge_names_both_schemes(provider):
    response = APIClient().get(LIST)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == 'Token realm="communications", Bearer realm="communications"'


def test_a_bearer_header_with_two_parts_is_an_invalid_request(provider):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {provider.token()} extra")
    response = client.get(LIST)
    assert response.status_code == 401
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


# The provider unreachable.


def assert_unavailable(response, retry_after: int):
    assert response.status_code == 503, response.content
    assert response.json() == {
        "type": "server_error",
        "errors": [
            {
                "code": "identity_provider_unavailable",
                "detail": "The identity provider cannot be reached to verify this token; retry shortly.",
                "attr": None,
            }
        ],
    }
    assert 1 <= int(response.headers["Retry-After"]) <= retry_after


def test_the_provider_down_before_any_key_is_known_is_503_with_retry_after(provider):
    token = provider.token()
    provider.down()
    assert_unavailable(get(token), retry_after=10)


def test_after_a_failure_the_provider_is_not_asked_again_until_retry_after(provider, settings):
    settings.OIDC_RETRY_AFTER = 1
    token = provider.token()
    provider.down()
    started = time.monotonic()
    for _ in range(5):
        assert_unavailable(get(token), retry_after=1)
    provider.up()
    assert_unavailable(get(token), retry_after=1)  # still within the second after the failure
    assert provider.hits == {"discovery": 0, "jwks": 0}
    time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))
    assert get(token).status_code == 200
    assert provider.hits == {"discovery": 1, "jwks": 1}


def test_with_the_provider_down_known_keys_still_verify_and_an_unknown_one_is_503(provider, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 0.01
    settings.OIDC_JWKS_CACHE_SECONDS = 0.05
    assert get(provider.token()).status_code == 200
    provider.down()
    time.sleep(0.1)  # the keys are past their lifespan: a fetch is due, and fails
    assert get(provider.token()).status_code == 200
    assert_unavailable(get(provider.token(key=SigningKey())), retry_after=10)


def test_a_provider_that_does_not_answer_in_time_is_503(provider, settings):
    settings.OIDC_HTTP_TIMEOUT = 0.3
    provider.delay = 1.0
    started = time.monotonic()
    assert_unavailable(get(provider.token()), retry_after=10)
    assert time.monotonic() - started < 0.9


def test_a_discovery_document_naming_another_issuer_is_not_trusted(provider):
    provider.discovery_issuer = "https://evil.example.com/realms/dealers"
    assert_unavailable(get(provider.token()), retry_after=10)
    assert provider.hits["jwks"] == 0


def test_a_token_verified_once_is_refused_once_it_expires(provider, settings):
    settings.OIDC_LEEWAY_SECONDS = 0
    token = provider.token(exp=int(time.time()) + 2)
    assert get(token).status_code == 200
    assert get(token).status_code == 200  # its claims kept: no second verification
    time.sleep(2.1)
    assert_refused(get(token), "token_expired", "The token has expired.")


def test_a_mapped_group_name_with_quotes_is_read_as_it_is(provider, settings):
    group = Group.objects.create(name='Dealer\'s "back office" \\ 1')
    settings.OIDC_GROUPS_MAP = {"crm-back-office": group.name}
    assert get(provider.token(groups=["crm-back-office"])).status_code == 403  # the group grants no view
    assert list(get_user_model().objects.get(username="ivanov").groups.all()) == [group]
    assert get(provider.token(groups=["crm-back-office"], jti="again")).status_code == 403
    assert list(get_user_model().objects.get(username="ivanov").groups.all()) == [group]
