from rest_framework import serializers

from ..models import CommunicationMethod


class CommunicationMethodSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommunicationMethod
        fields = ["code", "name", "is_active", "sort_order"]
        read_only_fields = fields
