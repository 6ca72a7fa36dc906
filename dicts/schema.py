"""The methods dictionary as the OpenAPI schema states it: read when the schema is generated.

The dictionary is data an operator edits in the admin, so the enums are what it held then. Where
the server reads a method code (a filter, a new communication's `method`), the enum lists the
codes it would take; where it writes one (answers), `x-extensible-enum`: a client must expect codes
added after its schema was generated.
"""

from typing import Any

from . import selectors

NEW_CODES = (
    "Codes of the methods dictionary when this schema was generated; new codes may appear "
    "(GET /v2/dicts/communications-methods lists them)."
)


def methods(*, active_only: bool = False) -> list[dict[str, Any]]:
    """The dictionary's rows, fresh (not the per-process copy), in dictionary order."""
    return [method for method in selectors.methods(fresh=True) if method["is_active"] or not active_only]


def _label(method: dict[str, Any]) -> str:
    return method["name"] if method["is_active"] else f"{method['name']} (inactive: not for new communications)"


def method_enum(*, active_only: bool = False) -> dict[str, Any]:
    """A code the server takes, e.g. a filter's value: inactive ones marked in the descriptions."""
    rows = methods(active_only=active_only)
    listed = "; ".join(f"`{method['code']}`: {_label(method)}" for method in rows)
    return {
        "type": "string",
        "enum": [method["code"] for method in rows],
        "x-enum-descriptions": [_label(method) for method in rows],
        "description": f"{NEW_CODES} {listed}.",
    }


def method_code_out() -> dict[str, Any]:
    """A code the server answers: any code of the dictionary, those known now listed."""
    return {"type": "string", "x-extensible-enum": [method["code"] for method in methods()], "description": NEW_CODES}
