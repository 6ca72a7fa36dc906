from rest_framework import serializers

from communications.details import PHONE_RE
from communications_project.api import StrictSerializer

from ..models import CallLog, Outcome
from ..selectors import mask_phone


class CallPhoneSerializer(StrictSerializer):
    extension = serializers.RegexField(
        r"^[0-9]{2,15}$",
        help_text="The employee's SIP extension, digits.",
        error_messages={"invalid": "Digits only, 2 to 15."},
    )
    phone = serializers.RegexField(
        PHONE_RE.pattern,
        required=False,
        help_text="E.164; defaults to details.phone.",
        error_messages={"invalid": "Enter the phone number in E.164 form, e.g. +79161234567."},
    )


class CallLogSerializer(serializers.ModelSerializer):
    """A call attempt. With `mask_phone` in the context the client's number is masked."""

    communication = serializers.UUIDField(source="communication_id", read_only=True)
    phone = serializers.CharField(
        read_only=True, help_text="E.164; masked (+7916*****67) unless the user may place calls."
    )
    hangup_cause_name = serializers.CharField(
        read_only=True, help_text="normal, busy, no_answer, rejected, other; unknown if it ended unseen."
    )
    outcome = serializers.ChoiceField(
        choices=Outcome.choices, read_only=True, help_text="One word for the card, from the fields below."
    )

    class Meta:
        model = CallLog
        fields = [
            "channel_id",
            "communication",
            "extension",
            "phone",
            "state",
            "outcome",
            "client_outcome",
            "hangup_cause",
            "hangup_cause_name",
            "hangup_cause_txt",
            "duration_sec",
            "error",
            "date_requested",
            "date_answered",
            "date_ended",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("mask_phone"):
            data["phone"] = mask_phone(data["phone"])
        return data


class CallEventSerializer(StrictSerializer):
    """What the PBX reports. Tolerant: extra keys are ignored, numbers may come as strings."""

    unknown_fields = "ignore"
    digit_strings = frozenset({"cause", "duration_sec"})

    channel_id = serializers.CharField(max_length=64)
    event = serializers.CharField(max_length=32, help_text="answered or hangup (and their synonyms).")
    cause = serializers.IntegerField(
        min_value=0,
        max_value=32767,  # the column is a smallint; Q.850 causes stay below 128
        required=False,
        allow_null=True,
        help_text="Q.850: 16 normal, 17 busy, 19 no answer, 21 rejected.",
    )
    cause_txt = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    duration_sec = serializers.IntegerField(min_value=0, max_value=604800, required=False, allow_null=True)
    dialstatus = serializers.CharField(
        max_length=32,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="The client's leg, ${DIALSTATUS}: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL.",
    )
