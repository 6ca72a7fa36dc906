"""Small pieces every API view shares: the strict serializer base, the error body, ETag, If-Match."""

import re

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from .errors import PreconditionFailed

_IF_MATCH_RE = re.compile(r'^\s*(?:W/)?"?([0-9]{1,9})"?\s*$')


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a typo is a 400 instead of a silently ignored field."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for key in unknown}
                )
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponseSerializer(serializers.Serializer):
    """The one error shape (drf-standardized-errors), for statuses the package does not add."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ErrorSerializer(many=True)


# The 413 every operation with a body can answer.
TOO_LARGE = OpenApiResponse(ErrorResponseSerializer, description="request_too_large: the body is over 2.5 MB.")


def reject_unknown_params(request: Request, allowed: set[str]) -> None:
    """A misspelt filter is a 400, never silently ignored (which would return everything)."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationError({key: ["Unknown query parameter."] for key in unknown}, code="unknown_parameter")


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(request: Request) -> int | None:
    """The version named by If-Match (`"3"`, `W/"3"` or `3`); None when absent or `*`."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _IF_MATCH_RE.match(header)
    if match is None:
        raise PreconditionFailed('If-Match must be the ETag of the resource, e.g. "3".')
    return int(match.group(1))
