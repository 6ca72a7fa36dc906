"""Create, update, delete and restore through the services: rules, history, version."""

import datetime as dt
from uuid import uuid4

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from communications import services
from communications.models import Communication, CommunicationHistory, Kind, Source, Status
from communications_project.errors import NotFound, PreconditionFailed, TransitionNotAllowed

from .factories import CommunicationFactory

pytestmark = pytest.mark.django_db


def create(**overrides) -> Communication:
    fields = {
        "actor": None,
        "source": Source.API,
        "method": "call",
        "kind": Kind.ACTUAL,
        "direction": "inbound",
        "client_uuid": uuid4(),
        "details": {"phone": "+79161234567"},
    }
    fields.update(overrides)
    return services.communication_create(**fields)


def errors_of(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        call()
    return error.value.message_dict


def test_actual_communication_is_created_in_work_with_start_now(user):
    before = timezone.now()
    communication = create(actor=user)
    row = Communication.objects.get(pk=communication.pk)
    assert row.status == Status.IN_WORK
    assert before <= row.date_start <= timezone.now()
    assert row.uuid.version == 7
    assert (row.created_by, row.updated_by, row.version) == (user, user, 1)
    entry = CommunicationHistory.objects.get(communication=row)
    assert (entry.action, entry.status_to, entry.actor, entry.source) == ("create", "in_work", user, "api")
    assert entry.changes["details"] == [None, {"phone": "+79161234567"}]


def test_planned_communication_is_created_in_created_status():
    start = timezone.now() + dt.timedelta(days=2)
    communication = create(kind=Kind.PLANNED, date_planned_start=start)
    row = Communication.objects.get(pk=communication.pk)
    assert (row.status, row.date_start, row.date_planned_start) == (Status.CREATED, None, start)


def test_uuids_are_time_ordered():
    first, second = create(), create()
    assert first.uuid < second.uuid


@pytest.mark.parametrize("code", ["post", "edo"])
def test_inactive_method_is_refused_on_create(code):
    with pytest.raises(ValidationError) as error:
        create(method=code, details={})
    assert error.value.error_dict["method"][0].code == "method_inactive"
    assert not Communication.objects.exists()


def test_unknown_method_is_refused():
    assert "Unknown method 'fax'." in errors_of(lambda: create(method="fax", details={}))["method"]


def test_planned_communication_needs_a_planned_start():
    assert "date_planned_start" in errors_of(lambda: create(kind=Kind.PLANNED))


def test_planned_finish_before_start_is_refused():
    start = timezone.now() + dt.timedelta(days=1)
    errors = errors_of(
        lambda: create(kind=Kind.PLANNED, date_planned_start=start, date_planned_finish=start - dt.timedelta(hours=1))
    )
    assert errors == {"date_planned_finish": ["Must not be before the planned start."]}


def test_actual_communication_has_no_planned_dates():
    errors = errors_of(lambda: create(date_planned_start=timezone.now()))
    assert errors == {"date_planned_start": ["Only a planned communication has planned dates."]}


def test_actual_start_in_the_future_is_refused():
    errors = errors_of(lambda: create(date_start=timezone.now() + dt.timedelta(hours=1)))
    assert errors == {"date_start": ["Must not be in the future."]}


@pytest.mark.parametrize(
    ("method", "details", "attr", "message"),
    [
        ("call", {}, "details.phone", "Required for method 'call'."),
        ("call", {"phone": "89161234567"}, "details.phone", "Enter the phone number in E.164 form, e.g. +79161234567."),
        ("call", {"phone": 79161234567}, "details.phone", "Must be a string."),
        (
            "call",
            {"phone": "+79161234567", "fax": "1"},
            "details.fax",
            "Unknown key for method 'call'; allowed: phone, call_id, duration_sec, recording_url.",
        ),
        ("sms", {"phone": "+7916\x001234567"}, "details.phone", "Null characters are not allowed."),
        ("email", {"email": "not-an-address"}, "details.email", "Enter a valid e-mail address."),
        ("email", {}, "details.email", "Required for method 'email'."),
        (
            "messenger",
            {"messenger": "icq", "handle": "@x"},
            "details.messenger",
            "Unknown messenger; expected one of: whatsapp, telegram, viber, vk, max, other.",
        ),
        ("site_request", {"source_url": "javascript:alert(1)"}, "details.source_url", "Enter a valid http(s) URL."),
        ("visit", {"phone": "+79161234567"}, "details.phone", "Unknown key for method 'visit'; allowed: none."),
        (
            "call",
            {"phone": "+79161234567", "duration_sec": True},
            "details.duration_sec",
            "Must be a whole number of seconds, 0 to 604800.",
        ),
        ("call", ["+79161234567"], "details", "Must be an object."),
    ],
)
def test_details_are_validated_per_method(method, details, attr, message):
    assert errors_of(lambda: create(method=method, details=details)) == {attr: [message]}
    assert not Communication.objects.exists()


def test_valid_details_of_every_method_are_accepted():
    create(method="email", details={"email": "client@example.com"})
    create(method="messenger", details={"messenger": "telegram", "handle": "@client"})
    create(
        method="site_request",
        details={"source_url": "https://dealer.example/form", "form": "test-drive", "utm_source": "yandex"},
    )
    create(method="mobile_app_request", details={"form": "service"})
    create(method="visit", details={})
    assert Communication.objects.count() == 5


def test_update_changes_only_the_fields_given_and_records_them(user):
    communication = CommunicationFactory(comment="keep me", details={"phone": "+79161234567"})
    services.communication_update(
        uuid=communication.pk, actor=user, source=Source.ADMIN, data={"subject": "New subject"}
    )
    row = Communication.objects.get(pk=communication.pk)
    assert (row.subject, row.comment, row.version) == ("New subject", "keep me", 2)
    entry = CommunicationHistory.objects.get(communication=row)
    assert (entry.action, entry.source, entry.changes) == (
        "update",
        "admin",
        {"subject": ["Test drive", "New subject"]},
    )


def test_update_merges_details_and_a_null_removes_a_key():
    communication = CommunicationFactory(details={"phone": "+79161234567", "call_id": "abc"})
    services.communication_update(
        uuid=communication.pk, actor=None, source=Source.API, data={"details": {"call_id": None, "duration_sec": 30}}
    )
    assert Communication.objects.get(pk=communication.pk).details == {"phone": "+79161234567", "duration_sec": 30}


def test_update_that_changes_nothing_writes_nothing():
    communication = CommunicationFactory()
    services.communication_update(uuid=communication.pk, actor=None, source=Source.API, data={"subject": "Test drive"})
    assert Communication.objects.get(pk=communication.pk).version == 1
    assert not CommunicationHistory.objects.exists()


def test_update_refuses_fields_that_only_transitions_change():
    communication = CommunicationFactory()
    errors = errors_of(
        lambda: services.communication_update(
            uuid=communication.pk, actor=None, source=Source.API, data={"status": "done", "method": "sms"}
        )
    )
    assert errors == {"method": ["This field cannot be changed."], "status": ["This field cannot be changed."]}


@pytest.mark.parametrize("status", [Status.DONE, Status.CANCELLED, Status.FAILED])
def test_final_communication_cannot_be_updated(status):
    communication = CommunicationFactory(status=status)
    with pytest.raises(TransitionNotAllowed):
        services.communication_update(uuid=communication.pk, actor=None, source=Source.API, data={"subject": "x"})
    assert Communication.objects.get(pk=communication.pk).subject == "Test drive"


def test_stale_version_is_refused():
    communication = CommunicationFactory()
    with pytest.raises(PreconditionFailed):
        services.communication_update(
            uuid=communication.pk, actor=None, source=Source.API, data={"subject": "x"}, expected_version=7
        )


def test_soft_delete_hides_and_restore_brings_back(user):
    communication = CommunicationFactory()
    services.communication_delete(uuid=communication.pk, actor=user, source=Source.API)
    assert not Communication.objects.alive().filter(pk=communication.pk).exists()
    assert Communication.objects.deleted().filter(pk=communication.pk).exists()
    with pytest.raises(NotFound):
        services.communication_transition(uuid=communication.pk, name="close", actor=user, source=Source.API)
    services.communication_restore(uuid=communication.pk, actor=user, source=Source.ADMIN)
    assert Communication.objects.alive().filter(pk=communication.pk).exists()
    actions = list(CommunicationHistory.objects.filter(communication=communication).values_list("action", "source"))
    assert actions == [("delete", "api"), ("restore", "admin")]
