"""Filters of the communications list (SPEC §6.1).

Every filter takes repeated (`?status=done&status=failed`) and comma-separated
(`?status=done,failed`) values, up to its own count. A value the filter does not know is a 400,
never ignored.
"""

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters

from communications_project.filters import DateTimeFilter, MultiValueField, MultiValueFilter, UUIDField
from dicts import schema as dict_schema
from dicts import selectors as dict_selectors

from .models import Communication, Direction, Kind, Status


class MethodCodesField(MultiValueField):
    """Method codes that exist in the dictionary (kept in the process: no query for a known code)."""

    def clean(self, value):
        codes = super().clean(value)
        if codes:
            unknown = dict_selectors.unknown_method_codes(codes)
            if unknown:
                raise ValidationError(f"Unknown method '{unknown[0]}'.", code="invalid_choice")
        return codes


class MethodFilter(MultiValueFilter):
    field_class = MethodCodesField

    def item_schema(self) -> dict:
        """For the schema: the dictionary's codes when it is generated."""
        return dict_schema.method_enum()


def _choice(choices) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": "Unknown value '%(value)s'."},
    )


# How many values each filter takes: enough that the longest query the schema admits, every
# filter at its maximum, fits in gunicorn's request line (8,190 bytes; a test computes it).
UUID_VALUES = 40
METHOD_VALUES = 20


class CommunicationFilterSet(filters.FilterSet):
    method = MethodFilter(field_name="method_id", item_field=forms.CharField(max_length=32), max_values=METHOD_VALUES)
    status = MultiValueFilter(item_field=_choice(Status.choices), max_values=len(Status.choices))
    kind = MultiValueFilter(item_field=_choice(Kind.choices), max_values=len(Kind.choices))
    direction = MultiValueFilter(item_field=_choice(Direction.choices), max_values=len(Direction.choices))
    client_uuid = MultiValueFilter(item_field=UUIDField(), max_values=UUID_VALUES)
    employee_uuid = MultiValueFilter(item_field=UUIDField(), max_values=UUID_VALUES)
    dealer_uuid = MultiValueFilter(item_field=UUIDField(), max_values=UUID_VALUES)
    date_created_after = DateTimeFilter(field_name="date_created", lookup_expr="gte")
    date_created_before = DateTimeFilter(field_name="date_created", lookup_expr="lt")
    date_planned_start_after = DateTimeFilter(field_name="date_planned_start", lookup_expr="gte")
    date_planned_start_before = DateTimeFilter(field_name="date_planned_start", lookup_expr="lt")
    date_finish_after = DateTimeFilter(field_name="date_finish", lookup_expr="gte")
    date_finish_before = DateTimeFilter(field_name="date_finish", lookup_expr="lt")
    date_updated_after = DateTimeFilter(field_name="date_updated", lookup_expr="gte")

    class Meta:
        model = Communication
        fields: list[str] = []

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            # Only the filters the request names: copying all fourteen and building their form fields
            # was most of an unfiltered list's time. A filter not named filters nothing anyway.
            self.base_filters = {name: f for name, f in type(self).base_filters.items() if name in data}
        super().__init__(data, *args, **kwargs)
