"""JSON out through orjson: several times faster than the standard library on the API's bodies."""

import orjson
from rest_framework.renderers import BaseRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()  # what orjson does not know (lazy translations, Decimal, ...) as DRF writes it
# UTC as "Z" like DRF's encoder; other offsets as given.
OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(data) -> bytes:
    """JSON as the API writes it: the one encoding of bodies, events and anything stored for replay."""
    return orjson.dumps(data, default=_fallback.default, option=OPTIONS)


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # UTF-8 is JSON's encoding; no charset parameter, as DRF's JSONRenderer

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data)
