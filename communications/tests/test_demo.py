from collections import Counter

import pytest
from django.core.management import call_command

from communications.models import Communication, CommunicationHistory

pytestmark = pytest.mark.django_db


def test_demo_data_covers_every_state_and_active_method():
    call_command("load_demo_data", count=400, seed=7)
    assert Communication.objects.count() == 400
    assert CommunicationHistory.objects.count() == 400
    states = Counter(Communication.objects.values_list("kind", "status"))
    assert set(states) == {
        ("actual", "in_work"),
        ("actual", "done"),
        ("actual", "failed"),
        ("planned", "created"),
        ("planned", "in_work"),
        ("planned", "done"),
        ("planned", "cancelled"),
        ("planned", "failed"),
    }
    methods = set(Communication.objects.values_list("method_id", flat=True))
    assert methods == {"call", "visit", "sms", "site_request", "email", "mobile_app_request", "messenger"}
    assert all(c.uuid.version == 7 for c in Communication.objects.all()[:50])


def test_setup_demo_prints_a_working_login_and_token(capsys):
    call_command("setup_demo", count=20)
    out = capsys.readouterr().out
    password = next(line.split()[-1] for line in out.splitlines() if line.startswith("Password:"))
    token = next(line.split()[-1] for line in out.splitlines() if line.startswith("API token:"))
    from django.contrib.auth import authenticate
    from django.test import RequestFactory
    from rest_framework.test import APIClient

    # django-axes watches every login, so authenticate() needs the request it comes with.
    request = RequestFactory().post("/admin/login/")
    assert authenticate(request, username="admin", password=password) is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/v3/communications?page_size=1")
    assert response.status_code == 200, response.json()
    assert Communication.objects.count() == 20 + 24  # and this morning's leads


def test_setup_demo_again_revokes_the_last_demo_key(capsys):
    from rest_framework.test import APIClient

    def printed_key() -> str:
        out = capsys.readouterr().out
        return next(line.split()[-1] for line in out.splitlines() if line.startswith("API token:"))

    call_command("setup_demo", count=1)
    first = printed_key()
    call_command("setup_demo", count=1)
    second = printed_key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    response = client.get("/v3/communications")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (401, "api_key_revoked")
    client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert client.get("/v3/communications").status_code == 200


def test_the_demo_has_a_morning_for_the_supervisors_dashboard():
    import datetime as dt

    from django.utils import timezone

    from communications import reports

    call_command("setup_demo", count=20)
    today = timezone.localdate()
    report = reports.lead_response(date_from=today - dt.timedelta(days=1), date_to=today)
    totals = report["totals"]
    assert totals["leads"] >= 24 and totals["contacted"] >= 12 and totals["waiting"] >= 1
    assert totals["within_sla"] >= 1 and totals["missed_sla"] >= 1
