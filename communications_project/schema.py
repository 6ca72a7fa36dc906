"""The OpenAPI schema states what the server enforces (SPEC §6.2).

A client generated from it sends nothing the server refuses, and what it refuses the server
refuses too: unknown body fields (`additionalProperties: false`), the forms of UUIDs, dates and
headers, blank and null-character strings, list sizes, the enums of query filters, and a query
short enough for the request line gunicorn reads (gunicorn.conf.py). `schemathesis` checks both
directions in CI (`.ci/fuzz`).

A rule it cannot state (one of two parameters, a date not in the future, a key reused with another
body) is said in the operation's description, and for tools in an `x-` keyword (`RULE_KEYWORDS`):
CI's schemathesis hooks (.ci/schemathesis_hooks.py) read those to leave out exactly the generated
cases such a rule refuses.
"""

import re

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.core.validators import RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.plumbing import build_parameter_type
from drf_spectacular.utils import OpenApiParameter
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from rest_framework import serializers

from .api import UUID_PATTERN, StrictSerializer
from .fields import DATE_TIME_PATTERN, NOT_BLANK_PATTERN
from .filters import DateTimeFilter, MultiValueFilter

NO_NULL_CHARACTER = "^[^\\u0000]*$"
# Something other than whitespace: DRF trims (Python's whitespace), and then a blank value is refused.
NOT_BLANK = NOT_BLANK_PATTERN


def _blank_in_model(field) -> bool:
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return model._meta.get_field(field.source).blank
    except FieldDoesNotExist:
        return False


def _has_pattern(field, schema: dict) -> bool:
    return "pattern" in schema or "enum" in schema or any(isinstance(v, RegexValidator) for v in field.validators)


class AutoSchema(StandardizedErrorsAutoSchema):
    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if isinstance(serializer, StrictSerializer) and direction == "request":
            if serializer.unknown_fields == "refuse" and "oneOf" not in schema:  # a oneOf's variants say it
                schema["additionalProperties"] = False
            if schema.get("description") == StrictSerializer.__doc__.strip().replace("\n    ", "\n"):
                del schema["description"]  # the base class's docstring, not the serializer's
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # drf-spectacular offers "" as a second oneOf branch of a blankable string with a pattern;
        # where the pattern admits "" already, "" would match both branches and so neither.
        variants = schema.get("oneOf", [])
        if len(variants) == 2 and variants[1] == {"type": "string", "maxLength": 0}:
            inner = variants[0]
            if not inner.get("minLength") and "format" not in inner and re.search(inner.get("pattern", ""), ""):
                del schema["oneOf"]
                schema.update(inner)

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and schema.get("type") == "array":
            if getattr(serializer, "min_length", None) is not None:
                schema["minItems"] = serializer.min_length
            if getattr(serializer, "max_length", None) is not None:
                schema["maxItems"] = serializer.max_length
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if direction == "response" and isinstance(field, serializers.ChoiceField) and _blank_in_model(field):
            # ModelSerializer drops allow_blank from read-only fields, so the enum would leave out
            # the "" such a column holds (e.g. a call's client_outcome before the PBX reports).
            field.allow_blank = True
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or field.read_only:
            return schema
        if isinstance(field, serializers.UUIDField):
            schema["pattern"] = UUID_PATTERN
        elif isinstance(field, serializers.DateTimeField):
            schema["pattern"] = DATE_TIME_PATTERN
            schema.update(getattr(field, "rules", {}))
        elif isinstance(field, serializers.CharField) and not _has_pattern(field, schema):
            if field.trim_whitespace and not field.allow_blank:
                schema["pattern"] = NOT_BLANK
            else:
                schema["pattern"] = NO_NULL_CHARACTER
        return schema


def _item_schema(field: forms.Field) -> dict:
    if isinstance(field, forms.ChoiceField):
        return {"type": "string", "enum": [str(value) for value, _label in field.choices]}
    if isinstance(field, forms.UUIDField):
        return {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
    schema = {"type": "string", "minLength": 1, "pattern": "^[^,]+$"}
    if getattr(field, "max_length", None):
        schema["maxLength"] = field.max_length
    return schema


class FilterExtension(DjangoFilterExtension):
    """Multi-value filters as what they are: repeated parameters, each value from a known set, as
    many as the filter takes; date filters with the pattern the server checks."""

    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        if isinstance(filter_field, DateTimeFilter):
            parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
            for parameter in parameters:
                parameter["schema"]["pattern"] = DATE_TIME_PATTERN
            return parameters
        if not isinstance(filter_field, MultiValueFilter):
            return super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        item_field = filter_field.extra["item_field"]
        items = filter_field.item_schema() if hasattr(filter_field, "item_schema") else _item_schema(item_field)
        schema = {"type": "array", "items": items, "maxItems": filter_field.extra["max_values"]}
        return [
            build_parameter_type(
                name=field_name,
                required=False,
                location=OpenApiParameter.QUERY,
                description="Repeat the parameter or separate values with commas.",
                schema=schema,
                explode=True,
                style="form",
            )
        ]


# Stateful testing (and readers) follow these from a created communication to what can be done
# with it.
_CREATED_LINKS = {
    "v2_communications_retrieve": "Read it",
    "v2_communications_partial_update": "Change it",
    "v2_communications_destroy": "Delete it",
    "v2_communications_history_list": "Its history",
    "v2_communications_primary_info_retrieve": "What the CRM card shows",
    "communications_start": "Start it (planned)",
    "communications_close": "Close it",
    "communications_failed": "Mark it failed",
    "communications_cancel": "Cancel it (planned)",
    "communications_call_phone": "Call the client",
    "communications_calls_list": "Its calls",
}


def require_bodies(result, generator, request, public):
    """A body with required fields is itself required: without one the server answers 400."""
    components = result.get("components", {}).get("schemas", {})
    for path in result["paths"].values():
        for operation in path.values():
            body = operation.get("requestBody")
            if not body:
                continue
            schema = body["content"]["application/json"]["schema"]
            if "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[1]]
            if schema.get("required") or "oneOf" in schema:
                body["required"] = True
    return result


def add_links(result, generator, request, public):
    """Links from `POST /v2/communications` (201) to the operations on the created `uuid`."""
    operation_ids = {operation.get("operationId") for path in result["paths"].values() for operation in path.values()}
    created = result["paths"]["/v2/communications"]["post"]["responses"]["201"]
    created["links"] = {
        operation_id: {
            "operationId": operation_id,
            "parameters": {"uuid": "$response.body#/uuid"},
            "description": description,
        }
        for operation_id, description in _CREATED_LINKS.items()
        if operation_id in operation_ids
    }
    return result


def add_database_unavailable(result, generator, request, public):
    """Every operation may answer 503 database_unavailable, with Retry-After, while the database is down;
    one that takes bearer tokens, identity_provider_unavailable while the provider's keys cannot be fetched."""
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
    provider = (
        " Or identity_provider_unavailable: the identity provider cannot be asked for the key a bearer token"
        " is signed with."
    )
    for path in result["paths"].values():
        for operation in path.values():
            responses = operation["responses"]
            if "503" in responses:
                responses["503"]["description"] += " Or database_unavailable: the database cannot be reached."
            else:
                responses["503"] = {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                    "description": "database_unavailable: the database cannot be reached; retry later.",
                }
            if any("bearerAuth" in scheme for scheme in operation.get("security", [])):
                responses["503"]["description"] += provider
            responses["503"]["headers"] = retry_after
    return result


# What a rule the schema cannot state looks like to a tool, beside its words in the description.
RULE_KEYWORDS = {
    "x-required-one-of": "on an operation: at least one of these query parameters",
    "x-not-in-future": "on a date-time property: not later than the server's clock (it allows a minute)",
    "x-only-with": "on a property: null or absent unless the body's properties have these values",
    "x-required-with": "on a property: present and not null when the body's properties have these values",
    "x-not-before": "on a date-time property: not earlier than this other property of the body, when both are given",
}

# gunicorn's limit_request_line (gunicorn.conf.py; a test holds the two equal).
REQUEST_LINE_MAX = 8190


def uuid_path_parameters(result, generator, request, public):
    """A `{uuid}` in a path is a UUID in its canonical form (anything else is a 404)."""
    for path in result["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "uuid":
                    parameter["schema"] = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
    return result


def add_uri_too_long(result, generator, request, public):
    """Every operation may answer 414 uri_too_long (gunicorn.conf.py answers it, in the error shape)."""
    response = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        "description": f"uri_too_long: the request line is over {REQUEST_LINE_MAX:,} bytes; send fewer values.",
    }
    for path in result["paths"].values():
        for operation in path.values():
            operation["responses"].setdefault("414", response)
    return result
