"""/metrics: who may read it, and what it counts."""

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families

from communications.models import Kind, Status
from communications.tests.factories import CommunicationFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


def samples(response) -> dict[tuple[str, frozenset], float]:
    text = response.content.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(response, name: str, **labels) -> float:
    return samples(response).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_metrics_are_not_there_unless_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_metrics_without_a_token_is_401_asking_for_a_bearer_token(client, metrics_token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["code"] == "not_authenticated"


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Token {TOKEN}", "Bearer ", f"Basic {TOKEN}"])
def test_metrics_with_a_wrong_token_is_403(client, metrics_token, header):
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


def test_metrics_with_the_token_counts_requests_by_route_and_status(client, api, metrics_token):
    before = client.get("/metrics", **metrics_token)
    api.get("/v3/communications")
    api.get("/v3/communications")
    client.get("/v3/communications")
    after = client.get("/metrics", **metrics_token)

    assert after.status_code == 200 and after["Content-Type"].startswith("text/plain")
    name = "communications_http_requests_total"
    labels = {"method": "GET", "route": "/v3/communications"}
    assert value(after, name, **labels, status="200") - value(before, name, **labels, status="200") == 2
    assert value(after, name, **labels, status="401") - value(before, name, **labels, status="401") == 1
    latency = "communications_http_request_duration_seconds_count"
    assert value(after, latency, **labels) - value(before, latency, **labels) == 3
    assert ("communications_http_request_duration_seconds_bucket", frozenset({**labels, "le": "0.1"}.items())) in (
        samples(after)
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # counted when the transition commits
def test_transitions_are_counted_by_target_status(client, api, metrics_token):
    planned = CommunicationFactory(kind=Kind.PLANNED, status=Status.CREATED)
    before = client.get("/metrics", **metrics_token)
    assert (
        api.post(f"/v2/communications/{planned.uuid}/cancel", {"cancel_reason": "x"}, format="json").status_code == 200
    )
    assert (
        api.post(f"/v2/communications/{planned.uuid}/cancel", {"cancel_reason": "x"}, format="json").status_code == 409
    )
    after = client.get("/metrics", **metrics_token)
    name = "communications_transitions_total"
    assert value(after, name, status="cancelled") - value(before, name, status="cancelled") == 1


def test_telephony_calls_are_counted_by_outcome(client, api_as, settings, metrics_token):
    settings.ASTERISK_ARI_URL = ""
    caller = api_as("communications.call_phone", "communications.view_communication")
    communication = CommunicationFactory(
        method_id="call", direction="outbound", kind=Kind.PLANNED, details={"phone": "+79161234567"}
    )
    before = client.get("/metrics", **metrics_token)
    caller.post(f"/v2/communications/{communication.uuid}/call-phone", {"extension": "101"}, format="json")
    after = client.get("/metrics", **metrics_token)
    name = "communications_telephony_calls_total"
    outcome = {"outcome": "telephony_not_configured"}
    assert value(after, name, **outcome) - value(before, name, **outcome) == 1


def test_an_allowed_network_reads_metrics_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403


def test_behind_a_proxy_the_allow_list_reads_the_forwarded_address(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "172.16.0.1"}
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3", **proxy).status_code == 200
    # The client may put anything on the left; only what the trusted proxy appended counts.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3, 192.168.1.1", **proxy).status_code == 403


def test_without_trusted_proxies_a_forwarded_address_is_ignored(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.TRUSTED_PROXY_COUNT = 0
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3", REMOTE_ADDR="192.168.1.1").status_code == 403


def test_a_bad_allow_list_stops_start_up():
    from communications_project.tests.test_health_and_settings import _manage

    result = _manage("check", DEBUG="1", DATABASE_URL="sqlite:///:memory:", METRICS_ALLOWED_NETWORKS="10.0.0.0/33")
    assert result.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS" in result.stderr


def test_ended_calls_are_counted_by_how_they_ended(client, metrics_token, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from telephony.models import CallLog, CallState
    from telephony.services import call_event

    communication = CommunicationFactory(method_id="call", direction="outbound", kind=Kind.PLANNED)
    CallLog.objects.create(
        communication=communication,
        channel_id="ch-1",
        extension="101",
        phone="+79161234567",
        state=CallState.PLACED,
        date_requested=timezone.now(),
    )
    before = client.get("/metrics", **metrics_token)
    with django_capture_on_commit_callbacks(execute=True):
        call_event(channel_id="ch-1", event="hangup", cause=16, client_outcome="busy")
        call_event(channel_id="ch-1", event="hangup", cause=16, client_outcome="busy")  # a repeat
    after = client.get("/metrics", **metrics_token)
    name = "communications_telephony_calls_ended_total"
    assert value(after, name, outcome="client_busy") - value(before, name, outcome="client_busy") == 1
