"""The JSON Schema of each method's `details` says what `validate_details` takes, value for value.

Both come from `SCHEMAS`; these tests hold them equal: every constraint of a validator is in its
schema, and a JSON Schema validator of the generated schema (OpenAPI 3.0's dialect, formats
checked) agrees with the validator on values at and past every edge.
"""

import pytest
from django.core.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from communications.details import (
    MESSENGERS,
    SCHEMAS,
    Integer,
    Text,
    details_json_schema,
    duration,
    email,
    messenger,
    phone,
    short_text,
    url,
    validate_details,
)

# Values at and past each edge of each validator. JSON Schema's `format: email` and `format: uri`
# are looser than Django's validators (an address without a dot in its domain passes them): the
# server checks more there, never less, which `test_the_schema_never_admits_less_than_the_server`
# holds for every sample.
SAMPLES = {
    phone: [
        "+79161234567",
        "+1234567",
        "+1" + "2" * 14,
        "+1" + "2" * 15,
        "+123456",
        "89161234567",
        "+09161234567",
        " +79161234567",
        "+79161234567 ",
        "+7916 1234567",
        "+7916\x001234567",
        "",
        "   ",
        79161234567,
        None,
    ],
    email: ["client@example.com", "a.b+c@dealer.example.ru", "not-an-address", "", " ", "a\x00@b.ru", 5],
    url: [
        "https://dealer.example/form?x=1",
        "HTTP://DEALER.EXAMPLE/",
        "https://dealer.example/" + "a" * 2024,
        "https://dealer.example/" + "a" * 2025,
        "ftp://dealer.example/",
        "javascript:alert(1)",
        "dealer.example",
        " https://dealer.example/",
        "",
        [],
    ],
    messenger: [*MESSENGERS, "icq", "Telegram", " telegram", "", None, 1],
    short_text: [
        "test-drive",
        " padded ",
        "x" * 255,
        "x" * 256,
        "",
        " \t\n",
        "\u3000",
        "\x1c",
        "a\x00b",
        "\u00a0x",
        True,
    ],
    duration: [0, 30, 604800, 604801, -1, "30", True, 1.5, None],
}


def schema_accepts(schema: dict, value) -> bool:
    return OAS30Validator(schema, format_checker=oas30_format_checker).is_valid(value)


def validator_accepts(validator, value) -> bool:
    try:
        validator(value)
    except ValidationError:
        return False
    return True


def test_every_validator_of_every_method_has_samples():
    used = {validator for keys in SCHEMAS.values() for validator, _required in keys.values()}
    assert used == set(SAMPLES)


@pytest.mark.parametrize("validator", list(SAMPLES), ids=lambda v: getattr(v, "description", "") or repr(v)[:30])
def test_every_constraint_of_a_validator_is_in_its_schema(validator):
    schema = validator.json_schema()
    if isinstance(validator, Integer):
        assert (schema["type"], schema["minimum"], schema["maximum"]) == (
            "integer",
            validator.minimum,
            validator.maximum,
        )
        return
    assert isinstance(validator, Text) and schema["type"] == "string"
    if validator.choices:
        assert schema["enum"] == list(validator.choices)
    else:
        assert (schema["minLength"], schema["maxLength"], schema["pattern"]) == (
            1,
            validator.max_length,
            validator.pattern,
        )
    assert schema.get("format") == validator.format


@pytest.mark.parametrize("validator", list(SAMPLES), ids=lambda v: repr(v)[:40])
def test_the_validator_and_its_schema_agree_on_every_sample(validator):
    schema = validator.json_schema()
    loose_format = schema.get("format") in ("email", "uri")
    for value in SAMPLES[validator]:
        by_schema, by_validator = schema_accepts(schema, value), validator_accepts(validator, value)
        if loose_format and by_schema and not by_validator:
            continue  # the server's format check is the stricter one (see SAMPLES)
        assert by_schema == by_validator, repr(value)


@pytest.mark.parametrize("method", sorted(SCHEMAS))
def test_each_methods_details_schema_agrees_with_validate_details(method):
    keys = SCHEMAS[method]
    good = {key: SAMPLES[validator][0] for key, (validator, _required) in keys.items()}
    required_only = {key: value for key, value in good.items() if keys[key][1]}
    cases = [
        good,
        required_only,
        {**required_only, "unknown": "x"},
        {**good, **{key: None for key, (_v, required) in keys.items() if not required}},  # null: absent
        {key: None for key in keys},
        {},
        [],
        "details",
    ]
    for partial in (False, True):
        schema = details_json_schema(method, partial=partial)
        for details in cases:
            try:
                validate_details(method, details)
                accepted = True
            except ValidationError:
                accepted = False
            if partial:
                # A PATCH's details are merged into complete ones: whatever the full schema takes,
                # the partial one takes too.
                assert not accepted or schema_accepts(schema, details), (method, details)
            else:
                assert schema_accepts(schema, details) == accepted, (method, details)


def test_the_schema_never_admits_less_than_the_server():
    """Every sample the validator takes, its schema takes: a generated client can send it."""
    for validator, values in SAMPLES.items():
        for value in values:
            if validator_accepts(validator, value):
                assert schema_accepts(validator.json_schema(), value), (validator, value)
