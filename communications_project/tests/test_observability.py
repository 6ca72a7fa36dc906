"""Request ids, JSON log lines, and what never reaches a log line."""

import io
import json
import logging

import pytest

from communications.models import Kind, Status
from communications.tests.factories import CommunicationFactory
from communications_project.observability import JsonLogFormatter, RequestContextFilter, mask_phone

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_lines():
    """The JSON lines the production formatter and filter write, as dicts (read after the request)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_sane_request_id_is_kept_and_returned(api):
    response = api.get("/v3/communications", HTTP_X_REQUEST_ID="req-2026.11:abc_1")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-2026.11:abc_1"


@pytest.mark.parametrize("given", ["", "x" * 129, "two words", "line\nbreak", "<script>", "é"])
def test_an_unusable_request_id_is_replaced_by_a_generated_one(api, given):
    response = api.get("/v3/communications", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] != given
    assert len(response["X-Request-ID"]) == 32 and int(response["X-Request-ID"], 16) >= 0


def test_every_request_is_one_json_line_with_route_status_duration_user_and_request_id(api, log_lines):
    communication = CommunicationFactory()
    response = api.get(f"/v2/communications/{communication.uuid}", HTTP_X_REQUEST_ID="trace-1")
    assert response.status_code == 200

    [line] = [line for line in log_lines() if line["message"] == "request"]
    assert line["logger"] == "communications_project.requests" and line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/v2/communications/<str:uuid>"  # the pattern, not the path
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user_id"] == api.user.pk
    assert line["request_id"] == "trace-1"
    assert "time" in line


def test_an_anonymous_refused_request_is_logged_without_a_user(client, log_lines):
    response = client.get("/v3/communications")
    assert response.status_code == 401
    [line] = [line for line in log_lines() if line["message"] == "request"]
    assert (line["status"], line["user_id"], line["route"]) == (401, None, "/v3/communications")
    # Django's own line about the refusal, written after the middlewares, has the id too.
    [django_line] = [line for line in log_lines() if line["logger"] == "django.request"]
    assert django_line["request_id"] == line["request_id"] == response["X-Request-ID"]


def test_the_request_id_is_forgotten_when_the_request_ends(client, log_lines):
    client.get("/healthz")
    logging.getLogger("anything").info("between requests")
    assert log_lines()[-1]["request_id"] is None


def test_an_unknown_path_is_one_route_label(client, log_lines):
    client.get("/no/such/page/12345")
    [line] = [line for line in log_lines() if line["message"] == "request"]
    assert line["route"] == "[unmatched]" and line["status"] == 404


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the line is written when the transition commits
def test_a_transition_logs_one_line_carrying_the_request_id(api, log_lines):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.IN_WORK)
    response = api.patch(
        f"/v2/communications/{communication.uuid}/close", {}, format="json", HTTP_X_REQUEST_ID="close-1"
    )
    assert response.status_code == 200

    [line] = [line for line in log_lines() if line["message"] == "transition"]
    assert line["communication_uuid"] == str(communication.uuid)
    assert (line["transition"], line["status_from"], line["status_to"]) == ("close", "in_work", "done")
    assert line["source"] == "api" and line["request_id"] == "close-1"


def test_a_refused_transition_logs_no_transition_line(api, log_lines, django_capture_on_commit_callbacks):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/v2/communications/{communication.uuid}/close", {}, format="json")
    assert response.status_code == 409
    assert [line for line in log_lines() if line["message"] == "transition"] == []


def test_extra_fields_of_any_logger_land_in_the_json_line(log_lines):
    logging.getLogger("communications.import").info("batch", extra={"rows": 5000, "file": "calls.csv", "batch": 3})
    [line] = log_lines()
    assert (line["logger"], line["message"]) == ("communications.import", "batch")
    assert (line["rows"], line["file"], line["batch"]) == (5000, "calls.csv", 3)
    assert line["request_id"] is None  # outside a request


def test_a_phone_number_is_masked(api_as, settings, log_lines):
    settings.ASTERISK_ARI_URL = ""  # not configured: the attempt is still a telephony call line
    caller = api_as("communications.call_phone", "communications.view_communication")
    communication = CommunicationFactory(
        method_id="call", direction="outbound", kind=Kind.PLANNED, details={"phone": "+79161234567"}
    )
    response = caller.post(f"/v2/communications/{communication.uuid}/call-phone", {"extension": "101"}, format="json")
    assert response.status_code == 503

    lines = log_lines()
    [call] = [line for line in lines if line["message"] == "telephony call"]
    assert (call["outcome"], call["phone"], call["extension"]) == ("telephony_not_configured", "+7916*****67", "101")
    assert "9161234567" not in json.dumps(lines)


def test_numbers_and_secrets_in_any_line_are_masked_or_dropped(log_lines):
    logging.getLogger("anything").warning(
        "calling %s failed", "+79161234567", extra={"to": "89161234567", "api_token": "abc123", "password": "pw"}
    )
    [line] = log_lines()
    assert line["message"] == "calling +7916*****67 failed"
    assert line["to"] == "8916*****67"
    assert line["api_token"] == "[redacted]" and line["password"] == "[redacted]"
    assert "abc123" not in json.dumps(line)


def test_uuids_and_short_numbers_are_not_taken_for_phones():
    from communications_project.observability import _scrub

    text = "uuid 0b7e4a52-1d3f-4c1e-9a53-200000000001 id 123456789 version 3"
    assert _scrub(text) == text


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+79161234567", "+7916*****67"), ("89161234567", "8916*****67"), ("101", "***"), ("+7916", "*****")],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked
