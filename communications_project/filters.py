"""Query-string filters every app's API uses.

Every multi-value filter takes repeated (`?status=done&status=failed`) and comma-separated
(`?status=done,failed`) values; the item field validates each value.
"""

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters

from .fields import UTCIsoDateTimeField


class MultiValueWidget(forms.Widget):
    """Reads every occurrence of the parameter and splits each on commas."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        return [part.strip() for value in values if value for part in value.split(",") if part.strip()]


class MultiValueField(forms.Field):
    widget = MultiValueWidget
    max_values = 1000

    def __init__(self, *, item_field: forms.Field, **kwargs):
        self.item_field = item_field
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

    def __init__(self, *args, item_field: forms.Field, **kwargs):
        kwargs.setdefault("lookup_expr", "in")
        super().__init__(*args, item_field=item_field, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class DateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
