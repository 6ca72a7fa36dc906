from rest_framework import serializers

from communications_project.api import StrictSerializer

from ..models import ORACLE_ID_MAX

MAX_VALUES = 1000


class IdTranslationSerializer(StrictSerializer):
    flora_uuid = serializers.UUIDField()
    oracle_id = serializers.IntegerField(min_value=1, max_value=ORACLE_ID_MAX)


class IdTranslationLookupSerializer(serializers.Serializer):
    """The answer to a lookup: the pairs found and which asked-for values were not."""

    class NotFound(serializers.Serializer):
        flora_uuid = serializers.ListField(child=serializers.UUIDField())
        oracle_id = serializers.ListField(child=serializers.IntegerField())

    results = IdTranslationSerializer(many=True)
    not_found = NotFound()


class ConflictSerializer(serializers.Serializer):
    type = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())
    conflicts = IdTranslationSerializer(many=True)
