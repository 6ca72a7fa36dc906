"""Small pieces every API view shares: the strict serializer base, the error body, ETag, If-Match."""

import re

from django.http import JsonResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

# What If-Match takes: `*`, or the ETag (`"3"`), weak (`W/"3"`) or bare (`3`). The schema states
# the same pattern.
IF_MATCH_PATTERN = r'^(\*|(W/)?"[0-9]{1,9}"|[0-9]{1,9})$'
_IF_MATCH_RE = re.compile(IF_MATCH_PATTERN)
IF_MATCH = OpenApiParameter(
    "If-Match",
    {"type": "string", "pattern": IF_MATCH_PATTERN, "maxLength": len('W/"123456789"')},
    location=OpenApiParameter.HEADER,
    required=False,
    description='The ETag you read, e.g. "3"; 412 if it changed; `*` or none: no check.',
)


# The JSON type each kind of field takes, checked before DRF parses the value: DRF would turn
# `false` into the nil UUID, `1.5` into the string "1.5" and "7" into 7. First match wins, so
# subclasses come before their bases. A field not listed takes any JSON (JSONField).
JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float, str), "a number"),
    (serializers.MultipleChoiceField, (list,), "a list"),
    (serializers.ListField, (list,), "a list"),
    (serializers.ListSerializer, (list,), "a list"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.Serializer, (dict,), "an object"),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.DateField, (str,), "a string"),
]


DIGITS_RE = re.compile(r"^[0-9]{1,9}$")
# UUIDs in their one canonical form: DRF and Python also take 32 bare hex digits, braces and URNs.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID_RE = re.compile(UUID_PATTERN)


def json_type_error(field: serializers.Field, value, *, digits_allowed: bool = False):
    """The error for `value` if its JSON type is not the field's, else None (null is DRF's business)."""
    if value is None:
        return None
    if digits_allowed and isinstance(value, str) and DIGITS_RE.fullmatch(value):
        return None
    for field_class, types, name in JSON_TYPES:
        if isinstance(field, field_class):
            # bool is an int in Python, never in JSON.
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                return [serializers.ErrorDetail(f"Expected {name}.", code="invalid")]
            if isinstance(field, serializers.UUIDField) and not UUID_RE.fullmatch(value):
                return [serializers.ErrorDetail("Must be a valid UUID.", code="invalid")]
            if isinstance(field, serializers.ListField) and field.child is not None:
                items = {i: json_type_error(field.child, item) for i, item in enumerate(value)}
                items = {i: error for i, error in items.items() if error}
                return items or None
            return None
    return None


class StrictSerializer(serializers.Serializer):
    """The base of every input serializer: exact JSON types, no unknown keys.

    A typo is a 400 instead of a silently ignored field, and a value of the wrong JSON type is a
    400 `invalid` instead of being coerced. Where the sender is not ours (the PBX), `digit_strings`
    lets integer fields also take a string of digits, and `unknown_fields = "ignore"` lets extra
    keys through.
    """

    unknown_fields = "refuse"
    digit_strings: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown and self.unknown_fields == "refuse":
                raise serializers.ValidationError(
                    {key: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for key in unknown}
                )
            errors = {}
            for name, field in self.fields.items():
                if name in data and not field.read_only:
                    error = json_type_error(field, data[name], digits_allowed=name in self.digit_strings)
                    if error:
                        errors[name] = error
            if errors:
                raise serializers.ValidationError(errors)
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
    if header is None:
        return None
    header = header.strip()
    if not _IF_MATCH_RE.fullmatch(header):
        raise ValidationError(
            {"If-Match": [serializers.ErrorDetail('Must be the ETag of the resource, e.g. "3".', code="invalid")]}
        )
    if header == "*":
        return None
    return int(header.removeprefix("W/").strip('"'))


def allowed_methods(view_func) -> set[str] | None:
    """The HTTP methods a routed view serves; None for views that are not class-based (admin)."""
    actions = getattr(view_func, "actions", None)  # a viewset bound to {method: action}
    if actions is not None:
        methods = {method.upper() for method in actions} | {"OPTIONS"}
    elif hasattr(view_func, "view_class"):
        view_class = view_func.view_class
        methods = {method.upper() for method in view_class.http_method_names if hasattr(view_class, method)}
    else:
        return None
    if "GET" in methods:
        methods.add("HEAD")
    return methods


class MethodNotAllowedMiddleware:
    """405 with `Allow` for a method the view does not serve, before authentication runs.

    DRF authenticates first and checks the method after, so `TRACE` without a token was a 401.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        methods = allowed_methods(view_func)
        if methods is None or request.method in methods:
            return None
        body = {
            "type": "client_error",
            "errors": [
                {"code": "method_not_allowed", "detail": f'Method "{request.method}" not allowed.', "attr": None}
            ],
        }
        response = JsonResponse(body, status=405)
        response["Allow"] = ", ".join(sorted(methods))
        return response
