"""The operator's day in a real browser (Debian's headless Chromium) against a live server, in Russian."""

import datetime as dt

import pytest
from django.utils import timezone

from communications.models import Communication, CommunicationHistory, Kind, Status
from communications.services import communication_transition

from .browser import needs_browser, wait_for
from .factories import CommunicationFactory

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), needs_browser]


def By():
    from selenium.webdriver.common.by import By

    return By


def open_page(driver, communication):
    driver.get(f"{driver.live_server_url}/admin/communications/communication/{communication.pk}/change/")


def messages(driver) -> list[str]:
    return [li.text for li in driver.find_elements(By().CSS_SELECTOR, ".messagelist li")]


def history_rows(driver) -> list[str]:
    return [row.text for row in driver.find_elements(By().CSS_SELECTOR, "#history-group tbody tr")]


def badge(driver) -> str:
    return driver.find_element(By().CSS_SELECTOR, "#status-badge .badge").text


def overdue(**kwargs):
    kwargs.setdefault("date_planned_start", timezone.now() - dt.timedelta(hours=3))
    return CommunicationFactory(kind=Kind.PLANNED, **kwargs)


def test_the_admin_is_ours_and_russian(logged_in):
    logged_in.get(f"{logged_in.live_server_url}/admin/")
    assert logged_in.find_element(By().ID, "site-name").text == "Коммуникации"
    assert logged_in.title.endswith("| Коммуникации")
    assert "Django" not in logged_in.find_element(By().TAG_NAME, "body").text


def test_operator_works_the_overdue_queue_and_finds_a_client_by_phone(logged_in):
    late = overdue(subject="Перезвонить по кредиту", details={"phone": "+79035550101"})
    overdue(subject="Напомнить о ТО", details={"phone": "+79035550102"})
    CommunicationFactory(kind=Kind.PLANNED, subject="Завтрашний звонок")  # due tomorrow
    CommunicationFactory(kind=Kind.ACTUAL, subject="Уже идёт")

    logged_in.get(f"{logged_in.live_server_url}/admin/communications/communication/")
    logged_in.find_element(By().LINK_TEXT, "Просроченные").click()

    wait_for(logged_in, lambda d: "queue=overdue" in d.current_url)
    subjects = [
        a.text for a in logged_in.find_elements(By().CSS_SELECTOR, "#result_list tbody .field-subject_display a")
    ]
    assert subjects == ["Перезвонить по кредиту", "Напомнить о ТО"]  # the earliest due first
    row = logged_in.find_element(By().CSS_SELECTOR, "#result_list tbody tr").text
    assert "Создана" in row and "план, исх." in row and "+79035550101" in row

    search = logged_in.find_element(By().ID, "searchbar")
    search.clear()
    search.send_keys("+7 903 555-01-01")
    search.submit()

    wait_for(logged_in, lambda d: "q=" in d.current_url)
    links = logged_in.find_elements(By().CSS_SELECTOR, "#result_list tbody .field-subject_display a")
    assert [a.text for a in links] == ["Перезвонить по кредиту"]
    links[0].click()
    wait_for(logged_in, lambda d: str(late.pk) in d.current_url)
    assert badge(logged_in) == "Создана"


def test_operator_closes_a_communication_with_a_result_from_the_top(logged_in):
    communication = CommunicationFactory(kind=Kind.ACTUAL, subject="Тест-драйв Kia Rio")
    open_page(logged_in, communication)
    buttons = [b.text for b in logged_in.find_elements(By().CSS_SELECTOR, "#work-panel .transition-button")]
    assert buttons == ["Выполнить…", "Отметить аут…"]

    logged_in.find_element(By().CSS_SELECTOR, "#transition-close summary").click()
    logged_in.find_element(By().NAME, "close-result").send_keys("Записан на тест-драйв в субботу")
    logged_in.find_element(By().CSS_SELECTOR, "#transition-close button[type=submit]").click()

    wait_for(logged_in, lambda d: badge(d) == "Выполнена")
    assert messages(logged_in) == ["Выполнить: готово, статус теперь Выполнена."]
    assert logged_in.find_elements(By().CSS_SELECTOR, "#work-panel .transition-button") == []
    newest = history_rows(logged_in)[0]
    assert "В работе → Выполнена" in newest
    assert "Результат: — → Записан на тест-драйв в субботу" in newest
    assert "operator" in newest and "Админка" in newest
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.result) == (Status.DONE, "Записан на тест-драйв в субботу")


def test_operator_marks_a_call_failed_with_a_reason(logged_in):
    from selenium.webdriver.support.select import Select

    communication = CommunicationFactory(kind=Kind.ACTUAL)
    open_page(logged_in, communication)
    logged_in.find_element(By().CSS_SELECTOR, "#transition-fail summary").click()
    Select(logged_in.find_element(By().NAME, "fail-fail_reason")).select_by_value("busy")
    logged_in.find_element(By().NAME, "fail-comment").send_keys("Занято три раза")
    logged_in.find_element(By().CSS_SELECTOR, "#transition-fail button[type=submit]").click()

    wait_for(logged_in, lambda d: badge(d) == "Аут")
    assert "Причина аута: — → Занято" in history_rows(logged_in)[0]
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.comment) == (Status.FAILED, "busy", "Занято три раза")


def test_a_transition_the_state_machine_refuses_is_a_message(logged_in):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    open_page(logged_in, communication)
    # Meanwhile a colleague closes it through the API: the page still offers Cancel.
    communication_transition(uuid=communication.pk, name="close", actor=None, source="api", result="Продано")

    logged_in.find_element(By().CSS_SELECTOR, "#transition-cancel summary").click()
    logged_in.find_element(By().NAME, "cancel-cancel_reason").send_keys("Клиент передумал")
    logged_in.find_element(By().CSS_SELECTOR, "#transition-cancel button[type=submit]").click()

    wait_for(logged_in, lambda d: messages(d))
    assert messages(logged_in) == ["«Отменить» невозможно: статус коммуникации сейчас «выполнена» (запланированная)."]
    assert badge(logged_in) == "Выполнена"
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.cancel_reason) == (Status.DONE, "")


def test_operator_cancels_three_planned_ones_at_once_and_reads_the_report(logged_in):
    from selenium.webdriver.support.select import Select

    rows = [overdue(subject=f"Приглашение на презентацию {n}") for n in range(3)]
    CommunicationFactory(kind=Kind.PLANNED, subject="Не трогать")
    logged_in.get(f"{logged_in.live_server_url}/admin/communications/communication/?queue=overdue")
    for row in rows:
        logged_in.find_element(By().CSS_SELECTOR, f"input[name=_selected_action][value='{row.pk}']").click()
    Select(logged_in.find_element(By().NAME, "action")).select_by_value("transition_cancel")
    logged_in.find_element(By().CSS_SELECTOR, "button[name=index]").click()

    reason = logged_in.find_element(By().NAME, "cancel-cancel_reason")
    assert len(logged_in.find_elements(By().CSS_SELECTOR, "ul.bulk-rows li")) == 3
    reason.send_keys("Презентацию перенесли")
    logged_in.find_element(By().CSS_SELECTOR, "button[name=apply]").click()

    wait_for(logged_in, lambda d: messages(d))
    assert messages(logged_in) == ["Отменить: изменено 3 из 3."]
    cancelled = Communication.objects.filter(status=Status.CANCELLED)
    assert {c.pk for c in cancelled} == {r.pk for r in rows}
    assert {c.cancel_reason for c in cancelled} == {"Презентацию перенесли"}
    assert CommunicationHistory.objects.filter(transition="cancel", source="admin").count() == 3
    assert Communication.objects.get(subject="Не трогать").status == Status.CREATED
