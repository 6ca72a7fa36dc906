"""The hot reads' answers (GET one, list, collections) from `.values()` rows.

A DRF serializer builds its fields on every instantiation and reads each value through a field
object: most of a read's time. The read serializers stay the one declaration of what a view shows
(and the schema's); `RowSerializer` reads their fields once, at import, into a plan of which
`.values()` column gives each field, and shapes rows by it. Values go out as they are (orjson
writes UUIDs, dates and JSON); dates are moved to the current time zone first, as the API's
DateTimeField does (communications_project.fields.local). A test holds the two representations equal.
"""

from collections.abc import Iterable

from django.utils import timezone
from rest_framework import serializers

from communications_project.fields import local

from .serializers import CommunicationFullSerializer, CommunicationShortSerializer


def _column(field: serializers.Field) -> str:
    """The `.values()` key that holds a field's value."""
    if isinstance(field, serializers.SlugRelatedField):
        return f"{field.source}__{field.slug_field}"
    return field.source.replace(".", "__")


class RowSerializer:
    def __init__(self, serializer_class: type[serializers.Serializer]):
        fields = serializer_class().fields
        self.plan = [
            (name, _column(field), isinstance(field, serializers.DateTimeField)) for name, field in fields.items()
        ]
        self.columns = [column for _name, column, _is_date in self.plan]

    def to_representation(self, row: dict, zone=None) -> dict:
        zone = zone or timezone.get_current_timezone()
        shaped = {}
        for name, column, is_date in self.plan:
            value = row[column]
            shaped[name] = local(value, zone) if is_date and value is not None else value
        return shaped

    def many(self, rows: Iterable[dict]) -> list[dict]:
        zone = timezone.get_current_timezone()
        return [self.to_representation(row, zone) for row in rows]


VIEWS = {"full": RowSerializer(CommunicationFullSerializer), "short": RowSerializer(CommunicationShortSerializer)}
