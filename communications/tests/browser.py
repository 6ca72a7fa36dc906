"""A real browser for the admin's end-to-end tests: Debian's headless Chromium through Selenium.

A pytest plugin (the root conftest loads it): the fixtures `browser` and `logged_in`, and a hook
that, when a test using the browser fails, saves screenshots of the page it was on and of the
communications list into `artifacts/screenshots/` (or $BROWSER_SCREENSHOTS) and names them in the
failure report. CI prints that directory.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(
    os.environ.get("BROWSER_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots")
)
USERNAME, PASSWORD = "operator", "Correct-Horse-42"

needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("REQUIRE_BROWSER"),
    reason="Chromium is not installed (apt-get install chromium chromium-driver); CI installs it",
)


def wait_for(driver, condition, timeout: float = 15):  # generous: CI machines are small and busy
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.wait import WebDriverWait

    # An element found on the page being left goes stale when the next one loads: look again.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


@pytest.fixture
def browser(live_server):
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
    driver.implicitly_wait(10)
    driver.live_server_url = live_server.url
    yield driver
    driver.quit()


@pytest.fixture
def logged_in(browser, live_server):
    from selenium.webdriver.common.by import By

    get_user_model().objects.create_superuser(USERNAME, "operator@example.ru", PASSWORD)
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(USERNAME)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "logout-form").text.lower() == "выйти"  # logged in, in Russian
    return browser


def save_screenshots(driver, test_name: str) -> list[Path]:
    """The page the test was on, its HTML, and the communications list: what an operator saw."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", test_name)
    saved = []
    page = SCREENSHOTS / f"{stem}.png"
    if driver.save_screenshot(str(page)):
        saved.append(page)
    source = SCREENSHOTS / f"{stem}.html"
    source.write_text(driver.page_source, encoding="utf-8")
    saved.append(source)
    base = getattr(driver, "live_server_url", None)
    if base:
        driver.get(f"{base}/admin/communications/communication/")
        listing = SCREENSHOTS / f"{stem}.list.png"
        if driver.save_screenshot(str(listing)):
            saved.append(listing)
    return saved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and driver is not None:
        try:
            paths = save_screenshots(driver, item.name)
        except Exception as error:  # the failure's report matters more than its pictures
            paths = [f"(no screenshots: {error})"]
        report.sections.append(("browser screenshots", "\n".join(str(path) for path in paths)))
    return report
