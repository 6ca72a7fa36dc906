"""Reports for supervisors (docs/REPORTS.md): thin views over communications.reports."""

import datetime as dt

from django import forms
from django.utils import timezone
from django_filters.utils import translate_validation
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from communications_project.api import UUID_PATTERN, reject_unknown_params
from communications_project.db import reads_replica
from communications_project.filters import MultiValueField, UUIDField
from communications_project.permissions import ModelPermissions

from .. import reports
from ..models import Communication, Status

# As many dealerships as a request line carries beside the other parameters (test_request_limits).
DEALER_VALUES = 100

VIEW_REPORTS = "communications.view_reports"
DATE_PATTERN = r"^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$"  # a day of the years 1900-2999, as the server takes


class LeadResponseParams(forms.Form):
    dealer_uuid = MultiValueField(item_field=UUIDField(), max_values=DEALER_VALUES)
    date_from = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    date_to = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    group_by = forms.ChoiceField(
        required=False,
        choices=[(group, group) for group in reports.GROUPS],
        error_messages={"invalid_choice": "Unknown value '%(value)s'."},
    )

    def clean(self):
        # A present but empty value (`?date_to=`) is a mistake, not "the default" (SPEC §6.1).
        for name in ("date_from", "date_to", "group_by"):
            if self.data.get(name) == "":
                self.add_error(name, forms.ValidationError("Must not be empty.", code="blank"))
        return super().clean()

    def clean_date_from(self):
        return self._in_range(self.cleaned_data["date_from"])

    def clean_date_to(self):
        return self._in_range(self.cleaned_data["date_to"])

    @staticmethod
    def _in_range(value: dt.date | None) -> dt.date | None:
        if value is not None and not dt.date(1900, 1, 1) <= value <= dt.date(2999, 12, 31):
            raise forms.ValidationError("Between 1900-01-01 and 2999-12-31.", code="out_of_range")
        return value


class StatsSerializer(serializers.Serializer):
    leads = serializers.IntegerField()
    contacted = serializers.IntegerField(help_text="Leads with a first contact.")
    not_contacted = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Not contacted and still open (created or in work).")
    within_sla = serializers.IntegerField(help_text="First contact within the SLA.")
    missed_sla = serializers.IntegerField(help_text="Contacted late, or not contacted and past the SLA.")
    within_sla_share = serializers.FloatField(
        allow_null=True, help_text="within_sla / (within_sla + missed_sla); null when there is none of either."
    )
    median_minutes = serializers.FloatField(allow_null=True, help_text="Of the contacted leads.")
    p90_minutes = serializers.FloatField(allow_null=True, help_text="Of the contacted leads.")


class GroupSerializer(StatsSerializer):
    key = serializers.CharField(
        allow_null=True, help_text="The day (YYYY-MM-DD), dealer_uuid or employee_uuid; null: none set."
    )

    def get_fields(self):
        fields = super().get_fields()
        return {"key": fields.pop("key"), **fields}  # the key first, as a reader looks for it


class WaitingLeadSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    method = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    client_uuid = serializers.UUIDField()
    employee_uuid = serializers.UUIDField(allow_null=True)
    dealer_uuid = serializers.UUIDField(allow_null=True)
    subject = serializers.CharField()
    date_created = serializers.DateTimeField()
    age_minutes = serializers.IntegerField()
    past_sla = serializers.BooleanField()


class WaitingSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = WaitingLeadSerializer(many=True, help_text=f"The oldest first, at most {reports.WAITING_SHOWN}.")


class LeadResponseSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    group_by = serializers.ChoiceField(choices=reports.GROUPS)
    sla_minutes = serializers.IntegerField()
    working_hours = serializers.CharField(allow_null=True)
    time_zone = serializers.CharField()
    generated_at = serializers.DateTimeField()
    totals = StatsSerializer()
    groups = GroupSerializer(many=True)
    waiting = WaitingSerializer()


class LeadResponseView(APIView):
    """Needs `communications.view_reports`."""

    queryset = Communication.objects.none()
    permission_classes = [ModelPermissions]
    action = "lead_response"
    action_permissions = {"lead_response": VIEW_REPORTS}

    @extend_schema(
        summary="Lead response: how fast web and app leads get their first contact",
        description="Definitions and edge cases: docs/REPORTS.md.",
        parameters=[
            OpenApiParameter(
                "dealer_uuid",
                {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
                    "maxItems": DEALER_VALUES,
                },
                explode=False,
                description="Dealerships, comma-separated or repeated; none: all.",
            ),
            OpenApiParameter(
                "date_from",
                {"type": "string", "format": "date", "pattern": DATE_PATTERN, "maxLength": 10},
                description="First day (Moscow time) of the leads' arrival; default: 29 days before date_to.",
            ),
            OpenApiParameter(
                "date_to",
                {"type": "string", "format": "date", "pattern": DATE_PATTERN, "maxLength": 10},
                description=f"Last day, included; default today. At most {reports.MAX_DAYS} days in all.",
            ),
            OpenApiParameter("group_by", enum=list(reports.GROUPS), default="day"),
        ],
        responses={200: LeadResponseSerializer},
        operation_id="reports_lead_response",
    )
    @reads_replica
    def get(self, request, **kwargs):
        reject_unknown_params(request, set(LeadResponseParams.base_fields))
        params = LeadResponseParams(request.query_params)
        if not params.is_valid():
            raise translate_validation(params.errors)
        date_to = params.cleaned_data["date_to"] or timezone.localdate()
        date_from = params.cleaned_data["date_from"] or date_to - dt.timedelta(days=29)
        report = reports.lead_response(
            date_from=date_from,
            date_to=date_to,
            group_by=params.cleaned_data["group_by"] or "day",
            dealer_uuids=params.cleaned_data["dealer_uuid"],
        )
        return Response(LeadResponseSerializer(report).data)
