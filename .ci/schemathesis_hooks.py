"""What CI's schemathesis run leaves out, and why: only what a rule the schema cannot state refuses.

Every other generated case is sent and checked with every check. Nothing here names an endpoint:
each rule is found in the schema, where the operation states it in words and, for tools, in an
`x-` keyword (communications_project/schema.py, RULE_KEYWORDS), so a new endpoint that states a
rule is covered as it is.

- `filter_case` drops a schema-valid case that such a rule refuses: no parameter of an
  `x-required-one-of` operation; a date after now where `x-not-in-future`; a property given against
  `x-only-with`, missing against `x-required-with`, earlier than its `x-not-before`.
- `map_case` makes an `Idempotency-Key` stand for one body (the generated key, a dot, a digest of
  the body). The server answers a key reused with another body 422 (the IETF draft's rule), and
  generated keys repeat ("0", "00"), so most requests would meet that rule before their body is
  read. Whether a key was used depends on the server's answer to an earlier case, unknown when
  `filter_case` runs (cases are generated in batches, ahead of the answers); dropping the cases
  later would leave almost none. The rule itself is tested in
  communications/tests/test_api_concurrency.py.
- `filter_failure` accepts one failure only: a schema-valid request refused with 400 whose every
  error is a rule of state, which no request shows (`STATE_RULES`, docs/API.md).
"""

import datetime as dt
import fnmatch
import hashlib
import json
import re

import schemathesis
from schemathesis.core import NOT_SET

# (error code, attr) of a 400 that depends on the stored communication, not on the request.
STATE_RULES = (
    ("unknown_key", "details.*"),  # PATCH: details of the communication's own method
    ("not_planned", "date_planned_*"),  # PATCH: planned dates on an actual communication
    ("invalid", "date_planned_finish"),  # PATCH: before the stored planned start
    ("before_start", "date_finish"),  # close: before the stored start
)

IDEMPOTENCY_HEADER = "idempotency-key"


def _positive(case) -> bool:
    return case.meta is None or case.meta.generation.mode.is_positive


def _resolve(document: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _body_properties(document: dict, schema: dict, body) -> dict:
    """The property schemas that apply to `body`: a oneOf's variant is chosen by its discriminator."""
    schema = _resolve(document, schema)
    discriminator = schema.get("discriminator")
    if "oneOf" in schema and discriminator and isinstance(body, dict):
        ref = discriminator.get("mapping", {}).get(body.get(discriminator["propertyName"]))
        return _body_properties(document, {"$ref": ref}, body) if ref else {}
    return {name: _resolve(document, prop) for name, prop in schema.get("properties", {}).items()}


def _when(body: dict, values: dict) -> bool:
    return all(body.get(name) == value for name, value in values.items())


def _time(value) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _breaks_a_body_rule(document: dict, operation: dict, body) -> bool:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content or not isinstance(body, dict):
        return False
    now = dt.datetime.now(dt.UTC)
    for name, prop in _body_properties(document, content["schema"], body).items():
        value = body.get(name)
        if prop.get("x-not-in-future") and (when := _time(value)) and when > now:
            return True
        if "x-only-with" in prop and value is not None and not _when(body, prop["x-only-with"]):
            return True
        if "x-required-with" in prop and value is None and _when(body, prop["x-required-with"]):
            return True
        other = prop.get("x-not-before")
        if other and (when := _time(value)) and (start := _time(body.get(other))) and when < start:
            return True
    return False


def _misses_one_of(operation: dict, query) -> bool:
    names = operation.get("x-required-one-of")
    return bool(names) and not any((query or {}).get(name) not in (None, [], "") for name in names)


def _fingerprint(body) -> str:
    text = json.dumps(None if body is NOT_SET else body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not _positive(case):
        return True
    document = case.operation.schema.raw_schema
    operation = case.operation.definition.raw
    if _misses_one_of(operation, case.query):
        return False
    body = case.body if isinstance(case.body, dict) else None
    return not _breaks_a_body_rule(document, operation, body)


@schemathesis.hook
def map_case(context, case):
    parameters = case.operation.definition.raw.get("parameters", [])
    for parameter in parameters:
        if parameter.get("in") != "header" or parameter.get("name", "").lower() != IDEMPOTENCY_HEADER:
            continue
        for name, key in (case.headers or {}).items():
            pattern = parameter.get("schema", {}).get("pattern", "")
            # A key the schema refuses is a negative case's point: left as it is.
            if name.lower() == IDEMPOTENCY_HEADER and isinstance(key, str) and re.fullmatch(pattern, key):
                case.headers[name] = f"{key[:238]}.{_fingerprint(case.body)}"
    return case


def _state_rule(error: dict) -> bool:
    attr = error.get("attr") or ""
    return any(error.get("code") == code and fnmatch.fnmatch(attr, pattern) for code, pattern in STATE_RULES)


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if "positive_data_acceptance" not in getattr(failure, "checks", ()) or response.status_code != 400:
        return True
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return True
    return not errors or not all(_state_rule(error) for error in errors)
