"""Shapes of the API. Input serializers only parse types; the rules live in services."""

from django.db import models
from django.utils import translation
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from communications_project.api import StrictSerializer
from communications_project.fields import DateTimeField
from dicts.models import CommunicationMethod

from ..limits import SUBJECT_MAX, TEXT_MAX
from ..models import (
    Attempt,
    AttemptOutcome,
    Communication,
    CommunicationHistory,
    Direction,
    EventType,
    FailReason,
    Kind,
    Source,
    Status,
)


def _text(max_length: int, **kwargs) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, allow_blank=True, trim_whitespace=False, **kwargs)


# Dates out as the API writes them (communications_project.fields.local).
FIELD_MAPPING = {**serializers.ModelSerializer.serializer_field_mapping, models.DateTimeField: DateTimeField}


class MethodCodeField(serializers.CharField):
    """A code of the methods dictionary, as answered (the schema: communications/api/schema.py)."""


class DetailsPatchField(serializers.DictField):
    """A PATCH's `details`, per the communication's own method (the schema: communications/api/schema.py)."""


PLANNED = {"kind": "planned"}
ACTUAL = {"kind": "actual"}


class CommunicationShortSerializer(serializers.ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    method = MethodCodeField(source="method_id", read_only=True)

    class Meta:
        model = Communication
        fields = [
            "uuid",
            "method",
            "kind",
            "direction",
            "status",
            "client_uuid",
            "employee_uuid",
            "dealer_uuid",
            "subject",
            "date_planned_start",
            "date_start",
            "date_finish",
            "date_created",
            "date_updated",
        ]
        read_only_fields = fields


class CommunicationFullSerializer(CommunicationShortSerializer):
    fail_reason = serializers.ChoiceField(choices=FailReason.choices, allow_blank=True, read_only=True)
    oracle_id = serializers.IntegerField(
        read_only=True, allow_null=True, default=None, help_text="The legacy ID, from ID translations."
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    last_attempt_outcome = serializers.ChoiceField(choices=AttemptOutcome.choices, allow_blank=True, read_only=True)

    class Meta(CommunicationShortSerializer.Meta):
        fields = [
            "uuid",
            "method",
            "kind",
            "direction",
            "status",
            "is_cancelled",
            "is_failed",
            "client_uuid",
            "employee_uuid",
            "dealer_uuid",
            "subject",
            "comment",
            "result",
            "details",
            "date_planned_start",
            "date_planned_finish",
            "date_start",
            "date_finish",
            "cancel_reason",
            "fail_reason",
            "oracle_id",
            "attempts_count",
            "last_attempt_at",
            "last_attempt_outcome",
            "date_created",
            "date_updated",
            "created_by",
            "updated_by",
            "version",
        ]
        read_only_fields = fields


class HistoryEntrySerializer(serializers.ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    status_from = serializers.ChoiceField(choices=Status.choices, allow_blank=True, read_only=True)
    status_to = serializers.ChoiceField(choices=Status.choices, allow_blank=True, read_only=True)

    class Meta:
        model = CommunicationHistory
        fields = ["date", "actor", "source", "action", "transition", "status_from", "status_to", "changes"]
        read_only_fields = fields


class CommunicationWithHistorySerializer(CommunicationFullSerializer):
    """For the schema of GET one: `?view=short` leaves fields out, `?include=history` adds one."""

    history = HistoryEntrySerializer(many=True, read_only=True)

    class Meta(CommunicationFullSerializer.Meta):
        fields = [*CommunicationFullSerializer.Meta.fields, "history"]
        read_only_fields = fields


class CommunicationCreateSerializer(StrictSerializer):
    method = serializers.SlugField(max_length=CommunicationMethod._meta.get_field("code").max_length)
    kind = serializers.ChoiceField(choices=Kind.choices)
    direction = serializers.ChoiceField(choices=Direction.choices)
    client_uuid = serializers.UUIDField()
    employee_uuid = serializers.UUIDField(required=False, allow_null=True)
    dealer_uuid = serializers.UUIDField(required=False, allow_null=True)
    subject = _text(SUBJECT_MAX, required=False)
    comment = _text(TEXT_MAX, required=False)
    result = _text(TEXT_MAX, required=False)
    details = serializers.DictField(required=False, help_text="Per-method attributes, see docs/API.md.")
    # Rules between fields, which OpenAPI cannot state: in words, and for tools (communications_project/schema.py).
    date_planned_start = DateTimeField(
        required=False,
        allow_null=True,
        help_text="Planned only, and required for planned.",
        rules={"x-only-with": PLANNED, "x-required-with": PLANNED},
    )
    date_planned_finish = DateTimeField(
        required=False,
        allow_null=True,
        help_text="Planned only; not before date_planned_start.",
        rules={"x-only-with": PLANNED, "x-not-before": "date_planned_start"},
    )
    date_start = DateTimeField(
        required=False,
        allow_null=True,
        help_text="Actual only; defaults to now; not in the future.",
        rules={"x-only-with": ACTUAL, "x-not-in-future": True},
    )


class CommunicationUpdateSerializer(StrictSerializer):
    """Every field optional; one left out keeps its value. `details` is merged key by key."""

    client_uuid = serializers.UUIDField(required=False)
    employee_uuid = serializers.UUIDField(required=False, allow_null=True)
    dealer_uuid = serializers.UUIDField(required=False, allow_null=True)
    subject = _text(SUBJECT_MAX, required=False)
    comment = _text(TEXT_MAX, required=False)
    result = _text(TEXT_MAX, required=False)
    details = DetailsPatchField(required=False)
    date_planned_start = DateTimeField(required=False, help_text="Planned communications only.")
    date_planned_finish = DateTimeField(
        required=False,
        allow_null=True,
        help_text="Planned communications only; not before the planned start.",
        rules={"x-not-before": "date_planned_start"},
    )


class StartSerializer(StrictSerializer):
    date_start = DateTimeField(
        required=False, help_text="Defaults to now; not in the future.", rules={"x-not-in-future": True}
    )


class CloseSerializer(StrictSerializer):
    date_finish = DateTimeField(
        required=False,
        help_text="Defaults to now; not in the future, nor before the start.",
        rules={"x-not-in-future": True},
    )
    result = _text(TEXT_MAX, required=False)


class FailSerializer(StrictSerializer):
    fail_reason = serializers.ChoiceField(choices=FailReason.choices)
    comment = _text(TEXT_MAX, required=False)


class CancelSerializer(StrictSerializer):
    cancel_reason = _text(TEXT_MAX, required=False)


class CollectionRequestSerializer(StrictSerializer):
    uuids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=1000)
    view = serializers.ChoiceField(choices=["short", "full"], default="short")


class CollectionResponseSerializer(serializers.Serializer):
    results = CommunicationFullSerializer(many=True)
    not_found = serializers.ListField(child=serializers.UUIDField())


class PrimaryInfoSerializer(serializers.Serializer):
    """What the CRM card shows: Russian labels, the relevant date, what can be done now."""

    uuid = serializers.UUIDField()
    method = MethodCodeField(source="method_id")
    method_name = serializers.CharField(source="method.name")
    kind = serializers.CharField()
    kind_name = serializers.SerializerMethodField()
    direction = serializers.CharField()
    direction_name = serializers.SerializerMethodField()
    status = serializers.CharField()
    status_name = serializers.SerializerMethodField()
    client_uuid = serializers.UUIDField()
    employee_uuid = serializers.UUIDField(allow_null=True)
    subject = serializers.CharField()
    date = serializers.SerializerMethodField()
    date_kind = serializers.SerializerMethodField()
    attempts_count = serializers.IntegerField()
    last_attempt_at = DateTimeField(allow_null=True)
    last_attempt_outcome = serializers.ChoiceField(choices=AttemptOutcome.choices, allow_blank=True)
    allowed_actions = serializers.ListField(child=serializers.CharField())

    @staticmethod
    def _ru(label) -> str:
        with translation.override("ru"):
            return str(label)

    def get_kind_name(self, obj) -> str:
        return self._ru(Kind(obj.kind).label)

    def get_direction_name(self, obj) -> str:
        return self._ru(Direction(obj.direction).label)

    def get_status_name(self, obj) -> str:
        return self._ru(Status(obj.status).label)

    @staticmethod
    def _relevant_date(obj) -> tuple[str, object]:
        if obj.status == Status.DONE:
            return "date_finish", obj.date_finish
        if obj.status == Status.IN_WORK:
            return "date_start", obj.date_start
        if obj.status == Status.CREATED:
            return "date_planned_start", obj.date_planned_start
        return "date_updated", obj.date_updated

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_date(self, obj):
        value = self._relevant_date(obj)[1]
        return DateTimeField().to_representation(value) if value else None

    @extend_schema_field(
        serializers.ChoiceField(choices=["date_finish", "date_start", "date_planned_start", "date_updated"])
    )
    def get_date_kind(self, obj) -> str:
        return self._relevant_date(obj)[0]


class AttemptSerializer(serializers.ModelSerializer):
    method = serializers.CharField(source="method_id", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Attempt
        fields = ["uuid", "method", "outcome", "date", "comment", "source", "call_id", "created_by", "date_created"]
        read_only_fields = fields


class AttemptRecordedSerializer(AttemptSerializer):
    """The attempt, and its communication as the attempt (and the policy's step) left it."""

    communication = CommunicationFullSerializer(read_only=True)

    class Meta(AttemptSerializer.Meta):
        fields = [*AttemptSerializer.Meta.fields, "communication"]
        read_only_fields = fields


class AttemptCreateSerializer(StrictSerializer):
    method = serializers.SlugField(
        max_length=CommunicationMethod._meta.get_field("code").max_length,
        help_text="How the client was tried: a code of the methods dictionary (call, sms, messenger, …).",
    )
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)
    date = DateTimeField(required=False, help_text="When it was tried; defaults to now; not in the future.")
    comment = _text(TEXT_MAX, required=False)


class StatusSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    is_final = serializers.BooleanField()


# The change feed (docs/EVENTS.md, docs/events.schema.json). For the schema only: the events go out
# as communications/events.py builds them.


TRANSITION_NAMES = list(Communication.transitions())


class EventTransitionSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=TRANSITION_NAMES, help_text="As in the history: start, close, fail, cancel.")
    status_from = serializers.ChoiceField(choices=Status.choices)
    to = serializers.ChoiceField(choices=Status.choices)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("status_from")  # `from` is a Python keyword
        return fields


class EventDataSerializer(serializers.Serializer):
    communication = CommunicationFullSerializer(help_text="The full view after the change, as GET answers it.")
    version = serializers.IntegerField(help_text="The communication's version after the change.")
    changes = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2, child=serializers.JSONField(allow_null=True)),
        help_text="Each changed field: [old, new].",
    )
    transition = EventTransitionSerializer(allow_null=True, help_text="For communication.status_changed.")
    source = serializers.ChoiceField(choices=Source.choices)
    actor = serializers.CharField(allow_null=True, help_text="The user's username; null for the PBX and imports.")


class EventSerializer(serializers.Serializer):
    """A CloudEvents 1.0 event in structured JSON."""

    specversion = serializers.ChoiceField(choices=["1.0"])
    id = serializers.UUIDField(help_text="The same wherever the event is delivered: dedupe by it.")
    source = serializers.CharField()
    type = serializers.ChoiceField(choices=EventType.values)
    subject = serializers.UUIDField(help_text="The communication's UUID.")
    time = serializers.DateTimeField()
    datacontenttype = serializers.ChoiceField(choices=["application/json"])
    sequence = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="The feed position: a cursor; ordered as a string.")
    data = EventDataSerializer()


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="Pass as `after` for what follows.")
    has_more = serializers.BooleanField(help_text="More events are ready now: ask again at once.")
    now = serializers.RegexField(r"^[0-9a-f]{32}$", help_text="The feed's position now: from now on.")
