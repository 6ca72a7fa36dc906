"""Operators' screens through the test client: the queue, the change page, transitions, bulk actions."""

import ast
import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

import communications
from communications.admin import actions as admin_actions
from communications.models import Communication, CommunicationHistory, Kind, Status
from communications.services import communication_delete, communication_update
from id_translations.models import IdTranslation

from .factories import CommunicationFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:communications_communication_changelist")


def change_url(communication) -> str:
    return reverse("admin:communications_communication_change", args=[communication.pk])


def transition_url(communication, name: str) -> str:
    return reverse("admin:communications_communication_transition", args=[communication.pk, name])


class _FormFields(HTMLParser):
    """Collects what a browser would submit from the change form (inputs, textareas, selects)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.data: dict[str, str] = {}
        self._inside = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._inside = attrs.get("id") == self.form_id
        if not self._inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "checkbox"):
            self.data[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False
        if tag == "textarea":
            self._textarea = None
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.lstrip("\n") if not self.data[self._textarea] else data


def change_form_data(client, communication) -> dict[str, str]:
    response = client.get(change_url(communication))
    assert response.status_code == 200
    parser = _FormFields("communication_form")
    parser.feed(response.content.decode())
    return parser.data


def text_of(html: str) -> str:
    """What a reader sees: tags gone (list items apart), white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", re.sub(r"</?(ul|li|div|td|th|tr)\b[^>]*>", " ", html)).split())


def messages_of(response) -> list[str]:
    return [text_of(str(m)) for m in response.context["messages"]]


def transition_buttons(body: str) -> list[str]:
    """The transitions offered at the top of the page, in order."""
    return re.findall(r'name="apply" value="(\w+)"', body)


@pytest.fixture
def operator(client, admin_user):
    """An administrator's browser asking for English (the Russian screens are tested on their own)."""
    client.force_login(admin_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def operators_group_member(client):
    """A member of the Operators group: change and call, no delete."""
    from django.contrib.auth.models import Group

    user = UserFactory(username="olga", is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def overdue(**kwargs) -> Communication:
    kwargs.setdefault("date_planned_start", timezone.now() - dt.timedelta(hours=2))
    return CommunicationFactory(kind=Kind.PLANNED, **kwargs)


# The list as a queue


def test_list_shows_what_an_operator_scans(operator):
    wanted = overdue(subject="Call back about the loan", details={"phone": "+79035550101"})
    IdTranslation.objects.create(flora_uuid=wanted.uuid, oracle_id=4402117)

    body = operator.get(LIST_URL).content.decode()

    row = body[body.index("Call back about the loan") - 2000 :]
    assert f'href="{change_url(wanted)}' in body  # the subject is the link
    assert '<span class="badge status-created">Created</span>' in row
    assert 'class="badge overdue"' in row
    assert "plan, out" in row
    queue = operator.get(LIST_URL, {"queue": "overdue"}).content.decode()
    assert 'class="sortable column-planned_display sorted ascending"' in queue  # the queue's order
    assert "+79035550101" in row and "4402117" in row
    assert str(wanted.employee_uuid)[:8] in row
    assert f'<a href="{change_url(wanted)}">{wanted.uuid}</a>' not in body  # no UUID as the link


def test_overdue_lists_open_planned_rows_past_their_start_earliest_first(operator):
    now = timezone.now()
    late = overdue(date_planned_start=now - dt.timedelta(days=2))
    later = overdue(status=Status.IN_WORK)
    CommunicationFactory(kind=Kind.PLANNED, date_planned_start=now + dt.timedelta(hours=1))  # not yet due
    overdue(status=Status.CANCELLED)  # final
    CommunicationFactory(kind=Kind.ACTUAL)  # not planned
    gone = overdue()
    communication_delete(uuid=gone.pk, actor=None, source="admin")

    listed = operator.get(LIST_URL, {"queue": "overdue"}).context["cl"].result_list

    assert [c.pk for c in listed] == [late.pk, later.pk]


def test_planned_for_today_lists_todays_open_planned_rows(operator):
    today = timezone.localdate()
    midday = timezone.make_aware(dt.datetime.combine(today, dt.time(12, 0)))
    todays = CommunicationFactory(kind=Kind.PLANNED, date_planned_start=midday)
    CommunicationFactory(kind=Kind.PLANNED, date_planned_start=midday + dt.timedelta(days=1))
    CommunicationFactory(kind=Kind.PLANNED, date_planned_start=midday - dt.timedelta(days=1))
    CommunicationFactory(kind=Kind.PLANNED, status=Status.CANCELLED, date_planned_start=midday)

    listed = operator.get(LIST_URL, {"queue": "today"}).context["cl"].result_list

    assert [c.pk for c in listed] == [todays.pk]


def test_list_with_filters_and_a_search_costs_a_bounded_number_of_queries(operator, django_assert_max_num_queries):
    for _ in range(3):
        overdue(details={"phone": "+79035550101"})
    CommunicationFactory.create_batch(60, kind=Kind.ACTUAL)
    params = {"queue": "overdue", "status__exact": "created", "method__code__exact": "call", "q": "+7 903 555-01-01"}

    with django_assert_max_num_queries(8) as captured:
        response = operator.get(LIST_URL, params)
        assert response.context["cl"].result_count == 3
    with django_assert_max_num_queries(8):
        assert operator.get(LIST_URL).status_code == 200  # 50 rows: still one query for them
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 10000" in sql for sql in counts), "the list never counts the whole table"


def test_overdue_and_today_read_the_index_of_open_planned_rows(operator):
    overdue()
    for queue in ("overdue", "today"):
        listed = operator.get(LIST_URL, {"queue": queue}).context["cl"].queryset
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small enough to scan
            plan = listed[:50].explain()
        assert "comm_open_planned_idx" in plan, plan


def test_list_does_not_offer_facet_counts(operator):
    assert operator.get(LIST_URL, {"_facets": "1"}).context["cl"].add_facets is False


def test_search_finds_by_client_uuid_and_phone(operator):
    wanted = CommunicationFactory(details={"phone": "+79035550101"})
    CommunicationFactory(details={"phone": "+79035550102"})

    by_client = operator.get(LIST_URL, {"q": str(wanted.client_uuid)})
    by_phone = operator.get(LIST_URL, {"q": "+7 (903) 555-01-01"})
    by_nonsense = operator.get(LIST_URL, {"q": "hello"})

    assert [c.pk for c in by_client.context["cl"].result_list] == [wanted.pk]
    assert [c.pk for c in by_phone.context["cl"].result_list] == [wanted.pk]
    assert list(by_nonsense.context["cl"].result_list) == []


def test_search_finds_by_oracle_id(operator):
    wanted = CommunicationFactory()
    CommunicationFactory()
    IdTranslation.objects.create(flora_uuid=wanted.uuid, oracle_id=4402117)
    assert [c.pk for c in operator.get(LIST_URL, {"q": "4402117"}).context["cl"].result_list] == [wanted.pk]


@pytest.mark.parametrize("term", ["²", "١٢", "٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣٣"])
def test_a_search_of_other_digits_finds_nothing_without_an_error(operator, term):
    CommunicationFactory(details={"phone": "+79035550101"})
    response = operator.get(LIST_URL, {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_filters_are_offered(operator):
    body = operator.get(LIST_URL).content.decode()
    for link in (
        "queue=overdue",
        "queue=today",
        "method__code__exact=call",
        "status__exact=in_work",
        "kind__exact=planned",
        "direction__exact=inbound",
        "deleted=yes",
    ):
        assert link in body


# The change page


def test_change_page_shows_the_status_and_the_transitions_allowed_now_at_the_top(operator):
    planned = CommunicationFactory(kind=Kind.PLANNED)
    IdTranslation.objects.create(flora_uuid=planned.uuid, oracle_id=77001)
    body = operator.get(change_url(planned)).content.decode()
    top = body[: body.index('id="communication_form"')]
    assert '<span class="badge status-created">Created</span>' in top
    assert transition_buttons(top) == ["start", "close", "fail", "cancel"]  # the model's order
    assert "Oracle ID: 77001" in top

    actual = CommunicationFactory(kind=Kind.ACTUAL)
    assert transition_buttons(operator.get(change_url(actual)).content.decode()) == ["close", "fail"]

    done = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    body = operator.get(change_url(done)).content.decode()
    assert transition_buttons(body) == []
    assert "The status is final" in body


def test_a_view_only_user_sees_no_buttons_and_cannot_post_one(client, user_with_perms):
    viewer = user_with_perms("communications.view_communication", is_staff=True)
    client.force_login(viewer)
    communication = CommunicationFactory(kind=Kind.PLANNED)

    assert transition_buttons(client.get(change_url(communication)).content.decode()) == []
    assert client.post(transition_url(communication, "start")).status_code == 403
    assert Communication.objects.get(pk=communication.pk).status == Status.CREATED


def test_start_is_one_click_and_is_written_to_the_history(operator, admin_user):
    communication = CommunicationFactory(kind=Kind.PLANNED)

    response = operator.post(transition_url(communication, "start"), {"apply": "start"}, follow=True)

    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK and row.date_start is not None
    entry = CommunicationHistory.objects.get(communication=row)
    assert (entry.transition, entry.source, entry.actor) == ("start", "admin", admin_user)
    assert messages_of(response) == ["Start: done, the status is now In work."]
    assert transition_buttons(response.content.decode()) == ["close", "fail", "cancel"]


def test_close_asks_for_the_result(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL)

    missing = operator.post(transition_url(communication, "close"), {"close-result": ""})
    assert missing.status_code == 200
    assert "This field is required." in missing.content.decode()
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK

    response = operator.post(
        transition_url(communication, "close"), {"close-result": "Booked a test drive"}, follow=True
    )

    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.result) == (Status.DONE, "Booked a test drive")
    assert row.date_finish is not None
    entry = CommunicationHistory.objects.get(communication=row)
    assert entry.changes["result"] == ["", "Booked a test drive"]
    body = response.content.decode()
    assert '<span id="status-badge"><span class="badge status-done">Done</span></span>' in body


def test_the_close_form_starts_with_the_result_already_there(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL, result="Client will come on Friday")
    body = operator.get(change_url(communication)).content.decode()
    assert re.search(r'name="close-result"[^>]*>\s*Client will come on Friday</textarea>', body)


def test_fail_asks_for_a_reason_code(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL, comment="Call after 6 pm")

    missing = operator.post(transition_url(communication, "fail"), {"fail-comment": "x"})
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK

    operator.post(transition_url(communication, "fail"), {"fail-fail_reason": "wrong_number", "fail-comment": ""})

    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.comment) == (Status.FAILED, "wrong_number", "Call after 6 pm")


def test_cancel_takes_a_reason(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    operator.post(transition_url(communication, "cancel"), {"cancel-cancel_reason": "Client sold the car"})
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.cancel_reason) == (Status.CANCELLED, "Client sold the car")


def test_a_refused_transition_is_a_message_and_changes_nothing(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)

    closed = operator.post(transition_url(communication, "close"), {"close-result": "again"}, follow=True)
    cancelled = operator.post(transition_url(CommunicationFactory(kind=Kind.ACTUAL), "cancel"), {}, follow=True)

    assert messages_of(closed) == ["“Close as done” is not possible: the communication is done now (actual)."]
    assert messages_of(cancelled) == ["“Cancel” is not possible: the communication is in work now (actual)."]
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.version, row.result) == (Status.DONE, 1, "")
    assert not CommunicationHistory.objects.exists()


def test_a_transition_on_a_deleted_communication_is_refused(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    communication_delete(uuid=communication.pk, actor=None, source="admin")

    body = operator.get(change_url(communication)).content.decode()
    response = operator.post(transition_url(communication, "start"), {}, follow=True)

    assert transition_buttons(body) == [] and 'id="restore-button"' in body
    assert messages_of(response) == ["The communication is deleted."]
    assert Communication.objects.get(pk=communication.pk).status == Status.CREATED


def test_restore_from_the_change_page(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    communication_delete(uuid=communication.pk, actor=None, source="admin")
    operator.post(reverse("admin:communications_communication_restore", args=[communication.pk]))
    assert Communication.objects.alive().filter(pk=communication.pk).exists()


def test_unknown_transition_is_404_and_get_goes_back_to_the_page(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    assert operator.post(transition_url(communication, "save")).status_code == 404
    response = operator.get(transition_url(communication, "start"))
    assert (response.status_code, response.url) == (302, change_url(communication))


def test_history_is_newest_first_and_readable(operator, admin_user):
    communication = CommunicationFactory(kind=Kind.PLANNED, subject="Test drive")
    changes = {"subject": "Trade-in", "details": {"phone": "+79035550199"}}
    communication_update(uuid=communication.pk, actor=admin_user, source="api", data=changes)
    operator.post(transition_url(communication, "fail"), {"fail-fail_reason": "busy"})

    body = operator.get(change_url(communication)).content.decode()
    history = body[body.index('id="history-group"') :]
    text = text_of(history)

    assert text.index("Created → Failed") < text.index("Updated")  # newest first
    assert "Fail reason: — → Busy" in text
    assert "Subject: Test drive → Trade-in" in text
    assert "Details: phone: +79161234567 → phone: +79035550199" in text
    assert "API" in text and "Admin" in text and "root" in text
    assert 'class="original"' not in history  # no caption rows
    assert "{" not in text  # no raw JSON


def test_editing_a_field_goes_through_the_service(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    data = change_form_data(operator, communication)
    data["subject"] = "Call about service"

    response = operator.post(change_url(communication), data)

    assert response.status_code == 302
    row = Communication.objects.get(pk=communication.pk)
    assert (row.subject, row.version) == ("Call about service", 2)
    assert CommunicationHistory.objects.get(communication=row).changes == {
        "subject": ["Test drive", "Call about service"]
    }


def test_invalid_details_are_shown_on_the_form_and_nothing_is_saved(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    data = change_form_data(operator, communication)
    data["details"] = '{"phone": "123"}'

    response = operator.post(change_url(communication), data)

    assert response.status_code == 200
    assert "phone: Enter the phone number in E.164 form" in response.content.decode()
    assert Communication.objects.get(pk=communication.pk).details == {"phone": "+79161234567"}


def test_change_page_costs_the_same_queries_however_long_the_history(operator):
    from django.test.utils import CaptureQueriesContext

    communication = CommunicationFactory(kind=Kind.PLANNED)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator.get(change_url(communication)).status_code == 200
        return len(captured)

    communication_update(uuid=communication.pk, actor=None, source="api", data={"subject": "first"})
    short = queries()
    for n in range(20):
        communication_update(uuid=communication.pk, actor=None, source="api", data={"subject": f"s{n}"})
    assert queries() == short <= 14


# Bulk actions


def bulk(client, action: str, rows, query: str = "", **data):
    return client.post(
        LIST_URL + query, {"action": action, "_selected_action": [r.pk for r in rows], **data}, follow=True
    )


def test_bulk_close_asks_first_then_closes_each_row_and_reports_refusals(operator):
    open_rows = CommunicationFactory.create_batch(2, kind=Kind.ACTUAL)
    done = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE, subject="Already done")
    rows = [*open_rows, done]

    asked = bulk(operator, "transition_close", rows)
    assert asked.templates[0].name == "admin/communications/communication/bulk_transition.html"
    assert Communication.objects.filter(status=Status.DONE).count() == 1

    response = bulk(operator, "transition_close", rows, apply="1", **{"close-result": ""})

    assert [Communication.objects.get(pk=r.pk).status for r in open_rows] == [Status.DONE, Status.DONE]
    assert Communication.objects.get(pk=done.pk).version == 1
    assert messages_of(response) == [
        "Close as done: changed 2 of 3.",
        "Refused: 1. Already done: “Close as done” is not possible: the communication is done now (actual).",
    ]


def test_bulk_close_with_a_result_sets_it_on_every_row(operator):
    rows = CommunicationFactory.create_batch(2, kind=Kind.ACTUAL)
    bulk(operator, "transition_close", rows, apply="1", **{"close-result": "Promo sent"})
    assert {Communication.objects.get(pk=r.pk).result for r in rows} == {"Promo sent"}


def test_bulk_fail_needs_a_reason_code(operator):
    rows = CommunicationFactory.create_batch(2, kind=Kind.ACTUAL)

    missing = bulk(operator, "transition_fail", rows, apply="1", **{"fail-fail_reason": ""})
    assert "This field is required." in missing.content.decode()
    assert not Communication.objects.filter(status=Status.FAILED).exists()

    bulk(operator, "transition_fail", rows, apply="1", **{"fail-fail_reason": "no_answer"})
    assert {(r.status, r.fail_reason) for r in Communication.objects.all()} == {(Status.FAILED, "no_answer")}


def test_bulk_cancel_cancels_planned_rows_and_refuses_actual_ones(operator):
    planned = CommunicationFactory.create_batch(3, kind=Kind.PLANNED)
    actual = CommunicationFactory(kind=Kind.ACTUAL, subject="Walk-in")

    response = bulk(
        operator, "transition_cancel", [*planned, actual], apply="1", **{"cancel-cancel_reason": "Campaign stopped"}
    )

    assert {Communication.objects.get(pk=r.pk).cancel_reason for r in planned} == {"Campaign stopped"}
    assert Communication.objects.get(pk=actual.pk).status == Status.IN_WORK
    assert messages_of(response)[0] == "Cancel: changed 3 of 4."
    assert "Walk-in" in messages_of(response)[1]
    history = CommunicationHistory.objects.filter(transition="cancel")
    assert history.count() == 3 and {h.source for h in history} == {"admin"}


def test_bulk_start_needs_no_form(operator):
    rows = CommunicationFactory.create_batch(2, kind=Kind.PLANNED)
    response = bulk(operator, "transition_start", rows)
    assert {Communication.objects.get(pk=r.pk).status for r in rows} == {Status.IN_WORK}
    assert messages_of(response) == ["Start: changed 2 of 2."]


def test_bulk_action_over_the_limit_changes_nothing(operator, monkeypatch):
    monkeypatch.setattr(admin_actions, "BULK_LIMIT", 2)
    rows = CommunicationFactory.create_batch(3, kind=Kind.PLANNED)
    response = bulk(operator, "transition_start", rows)
    assert messages_of(response) == ["Select at most 2 communications for one action."]
    assert not Communication.objects.filter(status=Status.IN_WORK).exists()


def test_soft_delete_and_restore_actions_report_what_they_did(operator):
    communication = CommunicationFactory()
    deleted = bulk(operator, "soft_delete_selected", [communication])
    assert messages_of(deleted) == ["Deletion: changed 1 of 1."]
    assert Communication.objects.deleted().filter(pk=communication.pk).exists()
    assert communication.pk not in [c.pk for c in operator.get(LIST_URL).context["cl"].result_list]
    assert [c.pk for c in operator.get(LIST_URL, {"deleted": "yes"}).context["cl"].result_list] == [communication.pk]

    alive = CommunicationFactory(subject="Alive")
    restored = bulk(operator, "restore_selected", [communication, alive], query="?deleted=all")
    assert Communication.objects.alive().filter(pk=communication.pk).exists()
    assert messages_of(restored) == ["Restoration: changed 1 of 2.", "Refused: 1. Alive: It is not deleted."]


def test_operators_get_transitions_in_bulk_but_not_delete(operators_group_member):
    choices = operators_group_member.get(LIST_URL).context["action_form"].fields["action"].choices
    names = [name for name, _ in choices]
    assert names[1:] == ["transition_start", "transition_close", "transition_fail", "transition_cancel"]


# Language, branding, and which app knows which


def test_admin_speaks_russian_by_default_and_english_on_request(client, admin_user):
    client.force_login(admin_user)
    CommunicationFactory(kind=Kind.PLANNED)
    russian = client.get(LIST_URL).content.decode()
    english = client.get(LIST_URL, headers={"accept-language": "en"}).content.decode()
    assert '<div id="site-name"><a href="/admin/">Коммуникации</a></div>' in russian
    assert "<title>" in russian and "| Коммуникации</title>" in russian
    assert '<div id="site-name"><a href="/admin/">Communications</a></div>' in english
    assert "Django" not in russian
    assert "Создана" in russian and "Просроченные" in russian
    assert "Created" in english and "Overdue" in english


def test_the_language_switch_remembers_the_choice(client, admin_user):
    client.force_login(admin_user)
    client.post(reverse("set_language"), {"language": "en", "next": LIST_URL})
    assert '<div id="site-name"><a href="/admin/">Communications</a></div>' in client.get(LIST_URL).content.decode()


def test_methods_dictionary_code_is_read_only(operator):
    response = operator.get(reverse("admin:dicts_communicationmethod_change", args=["call"]))
    assert response.status_code == 200
    assert 'name="code"' not in response.content.decode()
    assert 'name="is_active"' in response.content.decode()


def test_communications_does_not_import_telephony():
    """telephony stands on communications; it adds its screens by registration."""
    package = Path(communications.__file__).parent
    for path in package.rglob("*.py"):
        if "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("telephony"), path
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("telephony") for alias in node.names), path


def test_the_start_page_leads_to_the_queue(operator):
    body = operator.get(reverse("admin:index")).content.decode()
    assert f'href="{LIST_URL}?queue=overdue">Overdue</a>' in body
    assert f'href="{LIST_URL}?queue=today">Planned for today</a>' in body


def test_digits_that_may_be_a_phone_or_an_oracle_id_read_indexes_only(operator):
    """ "79035550101" is both a possible Oracle ID and a phone: two index look-ups, never a scan."""
    wanted = CommunicationFactory(details={"phone": "+79035550101"})
    by_oracle_id = CommunicationFactory()
    IdTranslation.objects.create(flora_uuid=by_oracle_id.uuid, oracle_id=79035550101)

    listed = operator.get(LIST_URL, {"q": "79035550101"}).context["cl"]

    assert {c.pk for c in listed.result_list} == {wanted.pk, by_oracle_id.pk}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = listed.queryset.explain()
    assert "comm_details_phone_idx" in plan and "Seq Scan on communications_communication" not in plan, plan


def test_a_transition_keeps_the_queue_the_page_was_opened_from(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    filters = "_changelist_filters=queue%3Doverdue"
    body = operator.get(f"{change_url(communication)}?{filters}").content.decode()
    assert f'action="{transition_url(communication, "close")}?{filters}"' in body

    response = operator.post(f"{transition_url(communication, 'close')}?{filters}", {"close-result": "Done"})

    assert response.url == f"{change_url(communication)}?{filters}"


def test_the_page_opened_from_a_queue_links_to_the_next_in_it(operator):
    now = timezone.now()
    first = overdue(date_planned_start=now - dt.timedelta(hours=3))
    second = overdue(date_planned_start=now - dt.timedelta(hours=2))
    overdue(date_planned_start=now - dt.timedelta(hours=1), status=Status.DONE)  # not in the queue
    filters = "_changelist_filters=queue%3Doverdue"

    from_queue = operator.get(f"{change_url(first)}?{filters}").content.decode()
    last = operator.get(f"{change_url(second)}?{filters}").content.decode()
    from_search = operator.get(f"{change_url(first)}?_changelist_filters=queue%3Doverdue%26q%3D1").content.decode()

    assert f'href="{change_url(second)}?{filters}" class="button next-in-queue"' in from_queue
    assert 'id="next-in-queue"' not in last
    assert 'id="next-in-queue"' not in from_search
