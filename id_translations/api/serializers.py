from rest_framework import serializers

from communications_project.api import StrictSerializer

from ..models import ORACLE_ID_MAX

MAX_VALUES = 1000  # pairs in one POST
# Values of each side in one look-up: the longest query (100 UUIDs and 100 19-digit IDs, each
# parameter repeated) is 7.9 KB, within gunicorn's 8,190-byte request line.
LOOKUP_MAX_VALUES = 100


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
