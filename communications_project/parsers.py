"""JSON in through orjson: strict UTF-8, so a lone surrogate escape anywhere is a parse error.

The standard library's parser turns `"\\ud800"` into a Python string that no encoder can write
back; echoed in an error (an unknown key is its own `attr`) it made the answer itself fail, a 500.
orjson refuses it at the door, with NaN and Infinity, as RFC 8259 asks.
"""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class ORJSONParser(JSONParser):
    """A JSONParser, so DRF reads the body through `request.body`: DATA_UPLOAD_MAX_MEMORY_SIZE holds (413)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read() if stream is not None else b"")
        except orjson.JSONDecodeError as error:
            raise ParseError(f"JSON parse error - {error}") from error
