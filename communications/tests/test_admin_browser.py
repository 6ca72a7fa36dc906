"""The operator's screens in a real browser (Debian's headless Chromium) against a live server."""

import os
import shutil

import pytest
from django.contrib.auth import get_user_model

from communications.models import Communication, CommunicationHistory, Kind, Status

from .factories import CommunicationFactory

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("REQUIRE_BROWSER"),
        reason="Chromium is not installed (apt-get install chromium chromium-driver); CI installs it",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    # An operator's browser asks for Russian (the admin follows Accept-Language; English is there too).
    options.add_experimental_option("prefs", {"intl.accept_languages": "ru-RU,ru"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def logged_in(browser, live_server):
    from selenium.webdriver.common.by import By

    get_user_model().objects.create_superuser("operator", "operator@example.ru", "Correct-Horse-42")
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("Correct-Horse-42")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "logout-form").text.lower() == "выйти"  # logged in, in Russian
    return browser


def test_operator_starts_a_planned_communication_with_the_button(logged_in, live_server):
    from selenium.webdriver.common.by import By

    communication = CommunicationFactory(kind=Kind.PLANNED)
    logged_in.get(f"{live_server.url}/admin/communications/communication/{communication.pk}/change/")
    buttons = {b.get_attribute("value"): b.text for b in logged_in.find_elements(By.NAME, "_fsm_transition_to")}
    assert buttons == {
        "start": "Взять в работу",
        "close": "Выполнить",
        "fail": "Отметить аут",
        "cancel": "Отменить",
    }

    logged_in.find_element(By.CSS_SELECTOR, "button[value=start]").click()

    assert "Выполнено: Взять в работу" in logged_in.find_element(By.CSS_SELECTOR, ".messagelist").text
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK
    entry = CommunicationHistory.objects.get(communication=row)
    assert (entry.transition, entry.source, entry.actor.username) == ("start", "admin", "operator")
    # Now in work: start is gone, the history inline shows the change.
    values = {b.get_attribute("value") for b in logged_in.find_elements(By.NAME, "_fsm_transition_to")}
    assert values == {"close", "fail", "cancel"}


def test_operator_marks_a_call_failed_with_a_reason(logged_in, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    communication = CommunicationFactory(kind=Kind.ACTUAL)
    logged_in.get(f"{live_server.url}/admin/communications/communication/{communication.pk}/change/")
    logged_in.find_element(By.CSS_SELECTOR, "button[value=fail]").click()

    WebDriverWait(logged_in, 5).until(expected_conditions.url_contains("/transition/fail/"))
    Select(logged_in.find_element(By.NAME, "fail_reason")).select_by_value("busy")
    logged_in.find_element(By.NAME, "comment").send_keys("Занято три раза")
    logged_in.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()

    WebDriverWait(logged_in, 5).until(expected_conditions.url_matches(r"/change/$"))
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.comment) == (Status.FAILED, "busy", "Занято три раза")
    assert logged_in.find_elements(By.NAME, "_fsm_transition_to") == []


def test_operator_finds_a_communication_by_phone(logged_in, live_server):
    from selenium.webdriver.common.by import By

    wanted = CommunicationFactory(details={"phone": "+79035550101"})
    CommunicationFactory(details={"phone": "+79035550102"})
    logged_in.get(f"{live_server.url}/admin/communications/communication/")
    search = logged_in.find_element(By.ID, "searchbar")
    search.send_keys("+7 903 555-01-01")
    search.submit()
    links = [a.text for a in logged_in.find_elements(By.CSS_SELECTOR, "#result_list tbody th a")]
    assert links == [str(wanted.uuid)]
