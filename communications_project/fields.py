"""Date-time input accepted everywhere: ISO 8601, stored in UTC, within years 1900-2999.

PostgreSQL refuses offsets beyond ±15:59 and Python cannot shift year 1 back across midnight;
both would surface as a 500. Converting to UTC here, with a sane range, makes them a 400.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

MIN = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
MAX = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)
MESSAGE = "Must be an ISO 8601 date-time between 1900 and 2999."


def to_utc(value: dt.datetime) -> dt.datetime:
    try:
        value = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValidationError(MESSAGE, code="out_of_range")
    if not MIN <= value < MAX:
        raise ValidationError(MESSAGE, code="out_of_range")
    return value


class DateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        try:
            return to_utc(parsed)
        except ValidationError as error:
            raise serializers.ValidationError(error.messages, code="out_of_range")


class UTCIsoDateTimeField(IsoDateTimeField):
    def clean(self, value):
        if value == "":  # `?date_updated_after=`: present but empty is a mistake, not "no filter"
            raise ValidationError("Must not be empty.", code="blank")
        parsed = super().clean(value)
        return to_utc(parsed) if parsed is not None else None
