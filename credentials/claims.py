"""What a verified token says about its employee: who, which permission groups, which dealerships.

Pure functions of the claims and the settings: a claim that is present but malformed refuses the
token (fail closed); one that is absent means none (no groups, no dealerships).
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .oidc import missing_claim

# Django's username column; a longer subject could not be stored.
MAX_SUBJECT_LENGTH = 150
# More groups or dealerships than this in one token is not an employee's: refused.
MAX_CLAIM_ITEMS = 1000
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Employee:
    """`request.auth` for a bearer token: what the token said, never the token itself."""

    issuer: str
    subject: str
    groups: frozenset[str]  # the Django groups the token grants, through OIDC_GROUPS_MAP
    dealer_uuids: frozenset[uuid.UUID]
    expires_at: int


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """`realm_access.roles` -> claims["realm_access"]["roles"] (Keycloak nests its roles); None if absent."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def subject_from(claims: Mapping[str, Any], name: str) -> str:
    value = claim(claims, name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SUBJECT_LENGTH or _CONTROL_RE.search(value):
        raise missing_claim(name)
    return value


def _strings(claims: Mapping[str, Any], name: str) -> list[str]:
    """A claim holding a list of strings, or one string; absent: an empty list."""
    value = claim(claims, name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_CLAIM_ITEMS or not all(isinstance(v, str) for v in value):
        raise missing_claim(name)
    return value


def groups_from(claims: Mapping[str, Any], name: str, mapping: Mapping[str, str]) -> frozenset[str]:
    """The Django groups the token's groups or roles map to; unmapped ones grant nothing."""
    return frozenset(mapping[group] for group in _strings(claims, name) if group in mapping)


def dealer_uuids_from(claims: Mapping[str, Any], name: str) -> frozenset[uuid.UUID]:
    """The dealerships the token names (`OIDC_DEALERS_CLAIM`): UUIDs in their canonical form.

    A list of UUID strings, or one UUID string (a single-valued provider attribute). Absent (or
    no claim configured): none. Anything else, one bad item included, refuses the token rather
    than guess at the employee's scope.
    """
    if not name:
        return frozenset()
    values = _strings(claims, name)
    if not all(_UUID_RE.fullmatch(v) for v in values):
        raise missing_claim(name)
    return frozenset(uuid.UUID(v) for v in values)
