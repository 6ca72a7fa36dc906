"""The Call button in a real browser against the stand-in ARI (conftest.FakeAri)."""

import pytest

from communications.models import Communication, Kind, Status
from communications.tests.browser import needs_browser, wait_for
from communications.tests.factories import CommunicationFactory
from telephony.models import CallLog, CallState

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), needs_browser]


def test_operator_presses_call_and_sees_the_call_in_the_call_log(logged_in, fake_ari):
    from selenium.webdriver.common.by import By

    communication = CommunicationFactory(kind=Kind.PLANNED, details={"phone": "+79161234567"})
    logged_in.get(f"{logged_in.live_server_url}/admin/communications/communication/{communication.pk}/change/")
    assert logged_in.find_element(By.CSS_SELECTOR, "#calls-group").text.endswith("Пока ничего.")

    logged_in.find_element(By.NAME, "call-extension").send_keys("314")
    logged_in.find_element(By.ID, "call-button").click()

    wait_for(logged_in, lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist li"))
    assert [m.text for m in logged_in.find_elements(By.CSS_SELECTOR, ".messagelist li")] == [
        "Звонок пошёл: сначала зазвонит ваш телефон 314, затем наберём +79161234567."
    ]
    [row] = logged_in.find_elements(By.CSS_SELECTOR, "#calls-group tbody tr")
    assert "314" in row.text and "+79161234567" in row.text and "Идёт вызов" in row.text
    assert logged_in.find_element(By.CSS_SELECTOR, "#status-badge .badge").text == "В работе"
    [request] = fake_ari.originates
    assert request.args["endpoint"] == "PJSIP/314"
    assert CallLog.objects.get(communication=communication).state == CallState.PLACED
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK
    # The extension is remembered for the next call.
    assert logged_in.find_element(By.NAME, "call-extension").get_attribute("value") == "314"
