import datetime as dt
from uuid import uuid4

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from communications.models import Communication, Direction, Kind, Status
from dicts.models import CommunicationMethod


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")


def _method(code: str) -> CommunicationMethod:
    return CommunicationMethod.objects.get(code=code)


class CommunicationFactory(factory.django.DjangoModelFactory):
    """A communication in any state: pass `kind`, `status` and the fields that state implies."""

    class Meta:
        model = Communication

    class Params:
        method_code = "call"

    method = factory.LazyAttribute(lambda o: _method(o.method_code))
    kind = Kind.PLANNED
    direction = Direction.OUTBOUND
    status = factory.LazyAttribute(lambda o: Communication.initial_status(o.kind))
    client_uuid = factory.LazyFunction(uuid4)
    employee_uuid = factory.LazyFunction(uuid4)
    subject = "Test drive"
    details = factory.LazyAttribute(lambda o: {"phone": "+79161234567"} if o.method_code in ("call", "sms") else {})
    date_planned_start = factory.LazyAttribute(
        lambda o: timezone.now() + dt.timedelta(days=1) if o.kind == Kind.PLANNED else None
    )
    date_start = factory.LazyAttribute(
        lambda o: timezone.now() - dt.timedelta(minutes=5) if o.status != Status.CREATED else None
    )
    date_finish = factory.LazyAttribute(lambda o: timezone.now() if o.status == Status.DONE else None)
    fail_reason = factory.LazyAttribute(lambda o: "no_answer" if o.status == Status.FAILED else "")
    date_created = factory.LazyFunction(timezone.now)
    date_updated = factory.LazyAttribute(lambda o: o.date_created)
