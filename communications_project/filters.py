"""Query-string filters every app's API uses.

Every multi-value filter takes repeated (`?status=done&status=failed`) and comma-separated
(`?status=done,failed`) values; the item field validates each value.
"""

import uuid

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters

from .api import UUID_RE
from .fields import UTCIsoDateTimeField


class MultiValueWidget(forms.Widget):
    """Reads every occurrence of the parameter and splits each on commas."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        # An empty value (`?status=`, `?status=done,`) is kept, so that the item field refuses it.
        return [part.strip() for value in values if value is not None for part in value.split(",")]


def parse_uuid(text: str) -> uuid.UUID:
    """A UUID in its canonical form only (ValueError otherwise), as the schema states it."""
    if not UUID_RE.fullmatch(text):
        raise ValueError(text)
    return uuid.UUID(text)


class UUIDField(forms.UUIDField):
    def to_python(self, value):
        if value not in self.empty_values and not UUID_RE.fullmatch(str(value)):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class MultiValueField(forms.Field):
    """Each value as sent (every repetition and every comma-separated part counts), at most
    `max_values`: the schema's maxItems, chosen so that the longest query fits in a request line."""

    widget = MultiValueWidget

    def __init__(self, *, item_field: forms.Field, max_values: int, **kwargs):
        self.item_field = item_field
        self.max_values = max_values
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        if not value:
            return []
        if len(value) > self.max_values:
            raise ValidationError(f"At most {self.max_values} values.", code="max_length")
        return [self.item_field.clean(item) for item in value]


class MultiValueFilter(filters.Filter):
    """`field IN (values)`; the item field validates each value."""

    field_class = MultiValueField

    def __init__(self, *args, item_field: forms.Field, max_values: int, **kwargs):
        kwargs.setdefault("lookup_expr", "in")
        super().__init__(*args, item_field=item_field, max_values=max_values, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class DateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
