"""The supervisors' dashboard in a real browser (Debian's headless Chromium) against a live server:
every number on the page is the lead-response report's, each count's link lands on a list of as
many rows, the charts are there. Screenshots of what the supervisor saw go to the browser
fixtures' artefacts folder (artifacts/screenshots/ or $BROWSER_SCREENSHOTS)."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from .browser import SCREENSHOTS, needs_browser, wait_for
from .test_lead_response import DEALER_A, E1, fixture, lead  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), needs_browser]


def By():
    from selenium.webdriver.common.by import By

    return By


def shoot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"dashboard-{name}.png"))


def shown(text: str):
    """A number as the Russian page writes it: 15,0; 43%; — for none."""
    text = text.strip()
    if text in ("—", ""):
        return None
    if text.endswith("%"):
        return int(text[:-1])
    return float(text.replace(",", ".").replace("\xa0", ""))


def result_count(driver) -> int:
    paginator = wait_for(driver, lambda d: d.find_element(By().CSS_SELECTOR, "#changelist .paginator"))
    return int(re.match(r"\s*(\d+)", paginator.text).group(1))


def test_a_supervisor_reads_the_dashboard_and_follows_its_numbers(logged_in, fixture):  # noqa: F811
    from selenium.webdriver.support.select import Select

    driver = logged_in
    day = fixture["d"]
    lead(timezone.make_aware(dt.datetime.combine(day, dt.time(9, 30))), employee=E1)  # waiting, past the SLA
    driver.get(f"{driver.live_server_url}/admin/")
    driver.find_element(By().LINK_TEXT, "Панель руководителя").click()
    wait_for(driver, lambda d: d.find_elements(By().ID, "dashboard-form"))
    Select(driver.find_element(By().NAME, "dealer")).select_by_value(str(DEALER_A))
    day_input = driver.find_element(By().NAME, "day")
    driver.execute_script("arguments[0].value = arguments[1]", day_input, day.isoformat())
    driver.find_element(By().CSS_SELECTOR, "#dashboard-form button[type=submit]").click()
    wait_for(driver, lambda d: f"day={day.isoformat()}" in d.current_url)
    shoot(driver, "ru")

    reporter = APIClient()
    reporter.force_authenticate(fixture_user())
    report = reporter.get(
        f"/v3/reports/lead-response?dealer_uuid={DEALER_A}&date_from={day - dt.timedelta(days=29)}&date_to={day}"
    ).json()
    the_day, totals = report["groups"][-1], report["totals"]
    assert the_day["key"] == str(day)

    stats = {element.get_attribute("data-key"): element for element in driver.find_elements(By().CSS_SELECTOR, ".stat")}
    for prefix, source in (("day", the_day), ("window", totals)):
        for key in ("leads", "contacted", "waiting", "within_sla", "missed_sla", "median_minutes", "p90_minutes"):
            element = stats[f"{prefix}.{key}"]
            assert shown(element.text) == source[key], (prefix, key, element.text)
        share = stats[f"{prefix}.within_sla_share"].text
        assert shown(share) == (None if source["within_sla_share"] is None else round(source["within_sla_share"] * 100))
    assert shown(stats["waiting.count"].text) == report["waiting"]["count"] == 2  # L4 and the 09:30 one
    # Hand-computed (test_lead_response): day D has 7 leads now, 4 contacted, median 15 min.
    assert (the_day["leads"], the_day["contacted"], the_day["median_minutes"]) == (7, 4, 15.0)

    # The waiting leads, the oldest first, red past the SLA.
    rows = driver.find_elements(By().CSS_SELECTOR, "table.waiting-leads tbody tr")
    assert [row.get_attribute("data-uuid") for row in rows] == [w["uuid"] for w in report["waiting"]["results"]]
    assert all("past-sla" in row.get_attribute("class") for row in rows)
    age = rows[0].find_element(By().CSS_SELECTOR, "td.age")
    assert age.value_of_css_property("color") == "rgba(192, 57, 43, 1)"
    assert re.fullmatch(r"\d+ дн \d+ ч", age.text)

    # The chart: a bar per day with a median, the SLA line.
    bars = driver.find_elements(By().CSS_SELECTOR, ".response-chart rect.bar")
    medians = [g["median_minutes"] for g in report["groups"] if g["median_minutes"] is not None]
    assert [float(bar.get_attribute("data-value")) for bar in bars] == medians == [15.0]
    assert driver.find_elements(By().CSS_SELECTOR, ".response-chart .threshold")

    # Every count's link lands on a list of as many rows.
    links = {
        key: stats[key].get_attribute("href")
        for key in ("day.leads", "day.contacted", "day.waiting", "window.leads", "waiting.count")
    }
    for key, href in links.items():
        driver.get(href)
        assert result_count(driver) == shown(stats_value(report, key)), key
        if key == "waiting.count":
            shoot(driver, "waiting-list")
    # And a bar: the day's leads.
    driver.get(f"{driver.live_server_url}/admin/communications/communication/dashboard/?dealer={DEALER_A}&day={day}")
    driver.find_element(By().CSS_SELECTOR, ".response-chart a").click()
    wait_for(driver, lambda d: "lead=all" in d.current_url)
    assert result_count(driver) == the_day["leads"]

    # The same page in English.
    driver.get(f"{driver.live_server_url}/admin/communications/communication/dashboard/?dealer={DEALER_A}&day={day}")
    driver.find_element(By().CSS_SELECTOR, '#language-form button[value="en"]').click()
    wait_for(driver, lambda d: "Supervisors' dashboard" in d.find_element(By().TAG_NAME, "h1").text)
    assert "Leads waiting for first contact" in driver.find_element(By().ID, "waiting").text
    shoot(driver, "en")


def fixture_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="operator")  # logged_in's superuser


def stats_value(report: dict, key: str) -> str:
    the_day, totals = report["groups"][-1], report["totals"]
    return str(
        {
            "day.leads": the_day["leads"],
            "day.contacted": the_day["contacted"],
            "day.waiting": the_day["waiting"],
            "window.leads": totals["leads"],
            "waiting.count": report["waiting"]["count"],
        }[key]
    )


def test_an_operator_records_an_attempt_and_sees_the_policy_replan_it(logged_in):
    from selenium.webdriver.support.select import Select

    from communications.models import Communication, Kind

    from .factories import CommunicationFactory

    communication = CommunicationFactory(kind=Kind.PLANNED, date_planned_start=timezone.now() - dt.timedelta(minutes=5))
    driver = logged_in
    driver.get(f"{driver.live_server_url}/admin/communications/communication/{communication.pk}/change/")
    driver.find_element(By().CSS_SELECTOR, "#record-attempt summary").click()
    Select(driver.find_element(By().NAME, "attempt-outcome")).select_by_value("no_answer")
    driver.find_element(By().NAME, "attempt-comment").send_keys("С мобильного")
    driver.find_element(By().CSS_SELECTOR, "#record-attempt button[type=submit]").click()

    wait_for(driver, lambda d: d.find_elements(By().CSS_SELECTOR, ".messagelist li"))
    assert [m.text for m in driver.find_elements(By().CSS_SELECTOR, ".messagelist li")] == [
        "Попытка записана: Не отвечает. Попыток: 1."
    ]
    [row] = driver.find_elements(By().CSS_SELECTOR, "#attempts-group tbody tr")
    assert "Не отвечает" in row.text and "С мобильного" in row.text
    history = driver.find_elements(By().CSS_SELECTOR, "#history-group tbody tr")[0].text
    assert "Политика попыток" in history and "Плановое начало" in history
    driver.find_element(By().CSS_SELECTOR, "#state-machine summary").click()
    assert driver.find_element(By().CSS_SELECTOR, "#state-machine svg").is_displayed()
    shoot(driver, "attempt-recorded")
    assert Communication.objects.get(pk=communication.pk).attempts_count == 1
