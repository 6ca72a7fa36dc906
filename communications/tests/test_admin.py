"""Operators' screens through the test client: list, search, transitions, soft delete."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from communications.models import Communication, CommunicationHistory, Kind, Status
from id_translations.models import IdTranslation

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db


class _FormFields(HTMLParser):
    """Collects what a browser would submit from the change form (inputs, textareas, selects)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
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
        if tag == "textarea":
            self._textarea = None
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.lstrip("\n") if not self.data[self._textarea] else data


def change_form_data(client, communication) -> dict[str, str]:
    response = client.get(reverse("admin:communications_communication_change", args=[communication.pk]))
    assert response.status_code == 200
    parser = _FormFields()
    parser.feed(response.content.decode())
    return parser.data


@pytest.fixture
def operator(client, admin_user):
    client.force_login(admin_user)
    return client


def test_list_renders_with_filters_without_a_full_count(operator, django_assert_max_num_queries):
    CommunicationFactory.create_batch(3, kind=Kind.PLANNED)
    CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    url = reverse("admin:communications_communication_changelist")
    with django_assert_max_num_queries(12):
        response = operator.get(url, {"status__exact": "done"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    body = response.content.decode()
    for link in (
        "method__code__exact=call",
        "status__exact=in_work",
        "kind__exact=planned",
        "direction__exact=inbound",
        "deleted=yes",
    ):
        assert link in body


def test_search_finds_by_client_uuid_and_phone(operator):
    wanted = CommunicationFactory(details={"phone": "+79035550101"})
    CommunicationFactory(details={"phone": "+79035550102"})
    url = reverse("admin:communications_communication_changelist")

    by_client = operator.get(url, {"q": str(wanted.client_uuid)})
    by_phone = operator.get(url, {"q": "+7 (903) 555-01-01"})
    by_nonsense = operator.get(url, {"q": "hello"})

    assert [c.pk for c in by_client.context["cl"].result_list] == [wanted.pk]
    assert [c.pk for c in by_phone.context["cl"].result_list] == [wanted.pk]
    assert list(by_nonsense.context["cl"].result_list) == []


def test_change_page_shows_only_the_transitions_allowed_now(operator):
    actual = CommunicationFactory(kind=Kind.ACTUAL)
    body = operator.get(reverse("admin:communications_communication_change", args=[actual.pk])).content.decode()
    assert 'value="close"' in body and 'value="fail"' in body
    assert 'value="cancel"' not in body and 'value="start"' not in body

    done = CommunicationFactory(kind=Kind.ACTUAL, status=Status.DONE)
    body = operator.get(reverse("admin:communications_communication_change", args=[done.pk])).content.decode()
    assert 'name="_fsm_transition_to"' not in body


def test_pressing_a_transition_changes_status_and_adds_history(operator, admin_user):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    data = change_form_data(operator, communication)
    data["_fsm_transition_to"] = "start"

    response = operator.post(reverse("admin:communications_communication_change", args=[communication.pk]), data)

    assert response.status_code == 302
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK and row.date_start is not None
    entry = CommunicationHistory.objects.get(communication=row)
    assert (entry.transition, entry.source, entry.actor) == ("start", "admin", admin_user)


def test_failing_asks_for_a_reason_first(operator):
    communication = CommunicationFactory(kind=Kind.ACTUAL)
    data = change_form_data(operator, communication)
    data["_fsm_transition_to"] = "fail"
    change_url = reverse("admin:communications_communication_change", args=[communication.pk])

    to_form = operator.post(change_url, data)
    assert to_form.status_code == 302 and to_form.url.endswith("/transition/fail/")
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK

    missing_reason = operator.post(to_form.url, {"comment": "x"})
    assert missing_reason.status_code == 200
    assert Communication.objects.get(pk=communication.pk).status == Status.IN_WORK

    done = operator.post(to_form.url, {"fail_reason": "wrong_number", "comment": "Not his number"})
    assert done.status_code == 302
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.fail_reason, row.comment) == (Status.FAILED, "wrong_number", "Not his number")


def test_editing_a_field_goes_through_the_service(operator):
    communication = CommunicationFactory(kind=Kind.PLANNED)
    data = change_form_data(operator, communication)
    data["subject"] = "Call about service"

    response = operator.post(reverse("admin:communications_communication_change", args=[communication.pk]), data)

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

    response = operator.post(reverse("admin:communications_communication_change", args=[communication.pk]), data)

    assert response.status_code == 200
    assert "phone: Enter the phone number in E.164 form" in response.content.decode()
    assert Communication.objects.get(pk=communication.pk).details == {"phone": "+79161234567"}


def test_soft_delete_and_restore_actions(operator):
    communication = CommunicationFactory()
    url = reverse("admin:communications_communication_changelist")
    operator.post(url, {"action": "soft_delete_selected", "_selected_action": [communication.pk]})
    assert Communication.objects.deleted().filter(pk=communication.pk).exists()
    assert communication.pk not in [c.pk for c in operator.get(url).context["cl"].result_list]
    deleted_list = operator.get(url, {"deleted": "yes"}).context["cl"].result_list
    assert [c.pk for c in deleted_list] == [communication.pk]

    operator.post(url + "?deleted=yes", {"action": "restore_selected", "_selected_action": [communication.pk]})
    assert Communication.objects.alive().filter(pk=communication.pk).exists()


def test_methods_dictionary_code_is_read_only(operator):
    response = operator.get(reverse("admin:dicts_communicationmethod_change", args=["call"]))
    assert response.status_code == 200
    assert 'name="code"' not in response.content.decode()
    assert 'name="is_active"' in response.content.decode()


def test_admin_speaks_russian_by_default_and_english_on_request(operator):
    CommunicationFactory(kind=Kind.PLANNED)
    url = reverse("admin:communications_communication_changelist")
    russian = operator.get(url).content.decode()
    english = operator.get(url, headers={"accept-language": "en"}).content.decode()
    assert "Коммуникации" in russian
    assert "Создана" in russian and "Запланированная" in russian
    assert "Created" in english and "Planned" in english


def test_search_finds_by_oracle_id(operator):
    wanted = CommunicationFactory()
    CommunicationFactory()
    IdTranslation.objects.create(flora_uuid=wanted.uuid, oracle_id=4402117)
    url = reverse("admin:communications_communication_changelist")
    assert [c.pk for c in operator.get(url, {"q": "4402117"}).context["cl"].result_list] == [wanted.pk]


def test_change_page_shows_the_calls(operator):
    from telephony.models import CallLog

    communication = CommunicationFactory(kind=Kind.PLANNED)
    CallLog.objects.create(
        communication=communication,
        channel_id="chan-9",
        extension="314",
        phone="+79161234567",
        state="failed",
        error="telephony_rejected: Asterisk refused (500): Allocation failed",
        date_requested=communication.date_created,
    )
    body = operator.get(reverse("admin:communications_communication_change", args=[communication.pk])).content.decode()
    assert "314" in body and "Allocation failed" in body
