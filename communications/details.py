"""Per-method validation of `details` (SPEC §2): which keys each method takes, and their forms.

`SCHEMAS` is the one definition: the validators below check a value, and the same objects write
the JSON Schema the API's OpenAPI document states for it (`details_json_schema`), so the two
cannot drift. Patterns are written in the part of regular-expression syntax that Python and
ECMA 262 (JSON Schema's) read alike: explicit character classes, no `\\s`, `\\d` or `\\w`.

Values are checked as they are sent, never trimmed: what the schema admits is what is stored.
Errors are reported on `details.<key>`, the attribute the API client sent.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from communications_project.fields import NOT_BLANK_PATTERN

PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MESSENGERS = ("whatsapp", "telegram", "viber", "vk", "max", "other")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# Text: no NUL, and something other than whitespace.
TEXT_PATTERN = NOT_BLANK_PATTERN
URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00]*$"
DURATION_MAX = 86400 * 7


def _compiled(validator, *names: str):
    """Django compiles a validator's regular expressions on first use, behind a proxy that every
    later use goes through again: compile them here, once."""
    for name in names:
        lazy = getattr(validator, name)
        setattr(validator, name, re.compile(lazy.pattern, lazy.flags))
    return validator


# Django's validators cost tens of microseconds a value; a bulk import meets the same addresses
# and pages again and again. Only valid values are remembered (an exception is not cached).
_check_email = functools.lru_cache(maxsize=8192)(
    _compiled(
        EmailValidator(message="Enter a valid e-mail address.", code="invalid_email"),
        "user_regex",
        "domain_regex",
        "literal_regex",
    ).__call__
)
_check_url = functools.lru_cache(maxsize=8192)(
    _compiled(URLValidator(schemes=["http", "https"], message="Enter a valid http(s) URL."), "regex").__call__
)


@dataclass(frozen=True)
class Text:
    """A string: no NUL, not blank, at most `max_length` characters, and then its own form."""

    max_length: int
    pattern: str = TEXT_PATTERN  # the form, as the schema states it
    code: str = "invalid"
    message: str = "Invalid value."
    choices: tuple[str, ...] = ()
    format: str | None = None  # JSON Schema's name for what `check` checks
    check: Callable[[str], None] | None = None
    description: str = ""

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Must be a string.", code="invalid")
        if "\x00" in value:
            raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        if not re.search(TEXT_PATTERN, value):
            raise ValidationError("Must not be blank.", code="blank")
        if len(value) > self.max_length:
            raise ValidationError(f"Ensure this value has at most {self.max_length} characters.", code="max_length")
        if self.choices and value not in self.choices or not re.search(self.pattern, value):
            raise ValidationError(self.message, code=self.code)
        if self.check is not None:
            self.check(value)
        return value

    def json_schema(self) -> dict[str, Any]:
        if self.choices:
            schema = {"type": "string", "enum": list(self.choices)}
        else:
            schema = {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": self.pattern}
        if self.format:
            schema["format"] = self.format
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Integer:
    minimum: int
    maximum: int
    message: str
    description: str = ""

    def __call__(self, value: Any) -> int:
        # bool is an int in Python; a duration of `true` is a client bug.
        if not isinstance(value, int) or isinstance(value, bool) or not self.minimum <= value <= self.maximum:
            raise ValidationError(self.message, code="invalid")
        return value

    def json_schema(self) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.description:
            schema["description"] = self.description
        return schema


phone = Text(
    16,
    pattern=PHONE_RE.pattern,
    code="invalid_phone",
    message="Enter the phone number in E.164 form, e.g. +79161234567.",
    description="E.164, e.g. +79161234567.",
)
email = Text(254, format="email", check=_check_email)
url = Text(
    2048,
    pattern=URL_PATTERN,
    message="Enter a valid http(s) URL.",
    format="uri",
    check=_check_url,
    description="An http(s) URL.",
)
messenger = Text(
    16,
    choices=MESSENGERS,
    code="invalid_choice",
    message=f"Unknown messenger; expected one of: {', '.join(MESSENGERS)}.",
)
duration = Integer(0, DURATION_MAX, f"Must be a whole number of seconds, 0 to {DURATION_MAX}.", "Seconds.")
short_text = Text(255)

# method code -> {key: (validator, required)}; a method not listed takes no keys.
SCHEMAS: dict[str, dict[str, tuple[Text | Integer, bool]]] = {
    "call": {
        "phone": (phone, True),
        "call_id": (short_text, False),
        "duration_sec": (duration, False),
        "recording_url": (url, False),
    },
    "sms": {"phone": (phone, True)},
    "email": {"email": (email, True)},
    "messenger": {"messenger": (messenger, True), "handle": (short_text, True)},
    "site_request": {
        "source_url": (url, False),
        "form": (short_text, False),
        **{key: (short_text, False) for key in UTM_KEYS},
    },
    "visit": {},
    "post": {},
    "edo": {},
}
SCHEMAS["mobile_app_request"] = SCHEMAS["site_request"]


def details_json_schema(method_code: str, *, partial: bool = False) -> dict[str, Any]:
    """What `validate_details` takes for the method, as JSON Schema (OpenAPI 3.0's dialect).

    A null is an absent key. `partial`: a PATCH's details, merged into the stored ones, where
    every key is optional and a null removes one, except a required key, which cannot be removed.
    """
    keys = SCHEMAS.get(method_code, {})
    properties = {}
    for key, (validator, required) in keys.items():
        properties[key] = validator.json_schema()
        if not required:
            properties[key]["nullable"] = True
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required_keys = [key for key, (_validator, required) in keys.items() if required]
    if required_keys and not partial:
        schema["required"] = required_keys
    return schema


def validate_details(method_code: str, details: Any) -> dict[str, Any]:
    """Return the cleaned details for a method, or raise ValidationError keyed `details.<key>`."""
    if not isinstance(details, dict):
        raise ValidationError({"details": ValidationError("Must be an object.", code="invalid")})
    schema = SCHEMAS.get(method_code, {})
    errors: dict[str, list[ValidationError]] = {}
    cleaned: dict[str, Any] = {}
    for key in details:
        if key not in schema:
            allowed = ", ".join(schema) or "none"
            errors[f"details.{key}"] = [
                ValidationError(
                    f"Unknown key for method '{method_code}'; allowed: {allowed}.",
                    code="unknown_key",
                )
            ]
    for key, (validator, required) in schema.items():
        if key not in details or details[key] is None:
            if required:
                errors[f"details.{key}"] = [ValidationError(f"Required for method '{method_code}'.", code="required")]
            continue
        try:
            cleaned[key] = validator(details[key])
        except ValidationError as error:
            errors[f"details.{key}"] = error.error_list
    if errors:
        raise ValidationError(errors)
    return cleaned
