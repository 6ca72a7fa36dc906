"""The communication's bodies as the OpenAPI schema states them, per method.

The methods are the dictionary's when the schema is generated (dicts/schema.py); each method's
`details` is what `communications.details.SCHEMAS` defines, written by the same objects that
validate it. So a client generated from the schema knows that a call needs `details.phone` in
E.164 form, and the schema cannot drift from the validators.

- Create: one body per active method, `oneOf` with a discriminator on `method`.
- PATCH: `details` is merged into the stored ones of the communication's own method, which the
  body does not name: `anyOf` the methods' partial details.
- Answers: `method` is any code of the dictionary (`x-extensible-enum`).
"""

import copy
import re
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from dicts import schema as dict_schema

from ..details import details_json_schema


def _camel(code: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", code) if part)


def _component(auto_schema, name: str, schema: dict[str, Any]) -> dict[str, str]:
    component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
    auto_schema.registry.register_on_missing(component)
    return component.ref


def details_component(auto_schema, code: str, *, partial: bool = False) -> dict[str, str]:
    schema = details_json_schema(code, partial=partial)
    schema["description"] = f"`details` of method `{code}`" + (
        ", merged into the stored ones: a null removes an optional key." if partial else "; a null is an absent key."
    )
    return _component(auto_schema, f"{_camel(code)}Details{'Patch' if partial else ''}", schema)


class CommunicationCreateExtension(OpenApiSerializerExtension):
    """The create body: the serializer's fields, once per active method, with that method's details."""

    target_class = "communications.api.serializers.CommunicationCreateSerializer"

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        mapping = {}
        for method in dict_schema.methods(active_only=True):
            code = method["code"]
            variant = copy.deepcopy(base)
            variant["properties"]["method"] = {"type": "string", "enum": [code], "description": method["name"]}
            variant["properties"]["details"] = details_component(auto_schema, code)
            if details_json_schema(code).get("required"):
                variant["required"] = sorted({*variant["required"], "details"})
            mapping[code] = _component(auto_schema, f"CommunicationCreate{_camel(code)}Request", variant)["$ref"]
        inactive = [method["code"] for method in dict_schema.methods() if not method["is_active"]]
        return {
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "method", "mapping": mapping},
            "description": (
                f"One body per active method of the dictionary, each with its own `details`. {dict_schema.NEW_CODES} "
                + (f"Inactive methods ({', '.join(inactive)}) are refused: 400 `method_inactive`." if inactive else "")
            ).strip(),
        }


class DetailsPatchExtension(OpenApiSerializerFieldExtension):
    target_class = "communications.api.serializers.DetailsPatchField"

    def map_serializer_field(self, auto_schema, direction):
        variants: list[dict[str, str]] = []
        seen: list[dict[str, Any]] = []
        for method in dict_schema.methods():
            schema = details_json_schema(method["code"], partial=True)
            if schema not in seen:  # methods with the same keys (site and app requests) share one
                seen.append(schema)
                variants.append(details_component(auto_schema, method["code"], partial=True))
        return {
            "anyOf": variants,
            "description": (
                "Merged key by key into the stored details; a null removes an optional key. The keys are "
                "those of the communication's own method (400 `unknown_key` for another's)."
            ),
        }


class MethodCodeExtension(OpenApiSerializerFieldExtension):
    target_class = "communications.api.serializers.MethodCodeField"

    def map_serializer_field(self, auto_schema, direction):
        return dict_schema.method_code_out()
