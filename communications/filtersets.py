"""Filters of the communications list (SPEC §6.1).

Every filter takes repeated (`?status=done&status=failed`) and comma-separated
(`?status=done,failed`) values. A value the filter does not know is a 400, never ignored.
"""

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters

from communications_project.filters import DateTimeFilter, MultiValueField, MultiValueFilter, UUIDField
from dicts.models import CommunicationMethod

from .models import Communication, Direction, Kind, Status


class MethodCodesField(MultiValueField):
    """Method codes that exist in the dictionary: one query for all of them."""

    def clean(self, value):
        codes = super().clean(value)
        if codes:
            known = set(CommunicationMethod.objects.filter(code__in=codes).values_list("code", flat=True))
            unknown = [code for code in codes if code not in known]
            if unknown:
                raise ValidationError(f"Unknown method '{unknown[0]}'.", code="invalid_choice")
        return codes


class MethodFilter(MultiValueFilter):
    field_class = MethodCodesField


def _choice(choices) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": "Unknown value '%(value)s'."},
    )


class CommunicationFilterSet(filters.FilterSet):
    method = MethodFilter(field_name="method_id", item_field=forms.CharField(max_length=32))
    status = MultiValueFilter(item_field=_choice(Status.choices))
    kind = MultiValueFilter(item_field=_choice(Kind.choices))
    direction = MultiValueFilter(item_field=_choice(Direction.choices))
    client_uuid = MultiValueFilter(item_field=UUIDField())
    employee_uuid = MultiValueFilter(item_field=UUIDField())
    dealer_uuid = MultiValueFilter(item_field=UUIDField())
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
