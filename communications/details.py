"""Per-method validation of `details` (SPEC §2): which keys each method takes, and their forms.

Errors are reported on `details.<key>`, the attribute the API client sent.
"""

import functools
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MESSENGERS = ("whatsapp", "telegram", "viber", "vk", "max", "other")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _text(max_length: int) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Must be a string.", code="invalid")
        if "\x00" in value:
            raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        value = value.strip()
        if not value:
            raise ValidationError("Must not be blank.", code="blank")
        if len(value) > max_length:
            raise ValidationError(f"Ensure this value has at most {max_length} characters.", code="max_length")
        return value

    return validate


def phone(value: Any) -> str:
    value = _text(16)(value)
    if not PHONE_RE.match(value):
        raise ValidationError("Enter the phone number in E.164 form, e.g. +79161234567.", code="invalid_phone")
    return value


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


def email(value: Any) -> str:
    value = _text(254)(value)
    _check_email(value)
    return value


def url(value: Any) -> str:
    value = _text(2048)(value)
    _check_url(value)
    return value


def messenger(value: Any) -> str:
    value = _text(16)(value)
    if value not in MESSENGERS:
        raise ValidationError(f"Unknown messenger; expected one of: {', '.join(MESSENGERS)}.", code="invalid_choice")
    return value


def duration(value: Any) -> int:
    # bool is an int in Python; a duration of `true` is a client bug.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 86400 * 7:
        raise ValidationError("Must be a whole number of seconds, 0 to 604800.", code="invalid")
    return value


short_text = _text(255)

# method code -> {key: (validator, required)}
SCHEMAS: dict[str, dict[str, tuple[Callable[[Any], Any], bool]]] = {
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
