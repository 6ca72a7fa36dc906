"""Reads of the methods dictionary, kept in each process for a short while.

The dictionary is a handful of rows that every list filtered by method and every dictionary request
needs; reading it each time would cost a query per request. Each process keeps it for
`DICTS_CACHE_SECONDS` (docs/CONFIGURATION.md): an edit in admin reaches the API within that. A code
the kept copy does not know is looked up again before it is refused, so a new method is usable at once.
"""

import time

from django.conf import settings

from .models import CommunicationMethod

_kept: dict = {"until": 0.0, "methods": ()}


def methods(*, fresh: bool = False) -> tuple[dict, ...]:
    """Every method, as `.values()` of all its fields, in dictionary order. Do not change them."""
    now = time.monotonic()
    if fresh or now >= _kept["until"]:
        _kept["methods"] = tuple(CommunicationMethod.objects.values())
        _kept["until"] = now + settings.DICTS_CACHE_SECONDS
    return _kept["methods"]


def unknown_method_codes(codes: list[str]) -> list[str]:
    """The codes that are no method's, in the order given."""
    known = {method["code"] for method in methods()}
    if any(code not in known for code in codes):
        known = {method["code"] for method in methods(fresh=True)}
    return [code for code in codes if code not in known]


def forget() -> None:
    """Drop the kept copy (tests; a process that just changed the dictionary)."""
    _kept["until"] = 0.0
