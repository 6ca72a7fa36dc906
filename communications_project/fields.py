"""Date-times in and out of the API: RFC 3339 with an offset, years 1900-2999 as written.

In: `DATE_TIME_PATTERN` is the one definition. The schema states it (`format: date-time` and this
`pattern`), the body field and the query filters check it, so a client generated from the schema
sends exactly what the server takes. The year is checked as written, before the value is moved
to UTC: a range on the UTC instant would refuse `1900-01-01T00:00:00+01:00`, which the pattern
admits. Moved to UTC, a value stays within a day of that range: nothing Python or PostgreSQL
cannot hold (they refuse offsets past ±24 h and years before 1, which surfaced as 500s).

Out: the current time zone's wall time, as DRF writes it, except where the zone's offset has
seconds (Moscow before 1919: +02:30:17): RFC 3339 cannot write those, and JSON encoders drop the
seconds and so move the instant. Such values are written in UTC.
"""

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

# The characters Python's str.isspace() takes for whitespace (what DRF trims and `blank` means),
# written out: a pattern with them means the same in Python and in ECMA 262 (JSON Schema), whose
# `\s` leaves out \x1c-\x1f and \x85.
SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Text: no NUL, and something other than whitespace.
NOT_BLANK_PATTERN = f"^[^\\x00]*[^\\x00{SPACE}][^\\x00]*$"

MIN_YEAR, MAX_YEAR = 1900, 2999
MESSAGE = "Must be an ISO 8601 date-time between 1900 and 2999."
FORM_MESSAGE = "Must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:00:00+03:00."

_TIME = (
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# RFC 3339's date-time with `T` and `Z` in capitals, at most nanoseconds (Python keeps
# microseconds), any year: a value of another form is `invalid`, a year out of range `out_of_range`.
_FORM_RE = re.compile(r"^([0-9]{4})" + _TIME)
# What the schema states: the same form, with the year range.
DATE_TIME_PATTERN = r"^(19[0-9]{2}|2[0-9]{3})" + _TIME
DATE_TIME_MAX_LENGTH = len("2026-12-01T10:00:00.123456789+03:00")


def check_year(value: dt.datetime) -> None:
    """The range, on the value as written (its own offset)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValidationError(MESSAGE, code="out_of_range")


def to_utc(value: dt.datetime) -> dt.datetime:
    check_year(value)
    return value.astimezone(dt.UTC)


def parse(value: str) -> dt.datetime:
    """An API date-time in UTC, or ValidationError `invalid` (the form) or `out_of_range`."""
    match = _FORM_RE.match(value)
    if match is None:
        raise ValidationError(FORM_MESSAGE, code="invalid")
    if not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
        raise ValidationError(MESSAGE, code="out_of_range")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:  # the form is right, the date is not (February 30)
        raise ValidationError(FORM_MESSAGE, code="invalid")
    return to_utc(parsed)


def local(value: dt.datetime, zone=None) -> dt.datetime:
    """How the API writes a stored date-time (see the module's docstring)."""
    shown = value.astimezone(zone or timezone.get_current_timezone())
    offset = shown.utcoffset()
    return shown if offset is None or offset.seconds % 60 == 0 else value.astimezone(dt.UTC)


class DateTimeField(serializers.DateTimeField):
    def __init__(self, *args, rules: dict | None = None, **kwargs):
        # `x-` keywords for the schema: rules between fields or with the clock (communications_project/schema.py).
        self.rules = rules or {}
        super().__init__(*args, **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format=FORM_MESSAGE)
        try:
            return parse(value)
        except ValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code)

    def to_representation(self, value):
        if not isinstance(value, dt.datetime):
            return super().to_representation(value)
        text = local(value).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


class UTCIsoDateTimeField(IsoDateTimeField):
    def clean(self, value):
        if value in (None, []):
            return None
        if value == "":  # `?date_updated_after=`: present but empty is a mistake, not "no filter"
            raise ValidationError("Must not be empty.", code="blank")
        return parse(value)
