"""Every request the schema admits fits in what gunicorn reads; a longer line is a JSON 414.

The longest request line of each operation is built from its schema (every parameter at its
maximum, each value at its longest once URL-encoded), so a new endpoint, or a raised limit, that
would not fit fails here instead of as gunicorn's 414 to a client generated from the schema.
"""

import ast
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from communications.api.pagination import CURSOR_PATTERN
from communications_project.api import UUID_PATTERN
from communications_project.fields import DATE_TIME_PATTERN
from communications_project.schema import REQUEST_LINE_MAX

ROOT = Path(__file__).resolve().parents[2]
# gunicorn's limit on one header line (limit_request_field_size, its default).
HEADER_LINE_MAX = 8190

pytestmark = pytest.mark.django_db


def gunicorn_setting(name: str):
    """A literal setting of gunicorn.conf.py, read without running it (it prepares a metrics directory)."""
    for node in ast.parse((ROOT / "gunicorn.conf.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise LookupError(name)


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def longest(schema: dict) -> str:
    """The value of `schema` that is longest once URL-encoded."""
    if "enum" in schema:
        return max((str(value) for value in schema["enum"]), key=lambda value: len(quote(value, safe="")))
    kind = schema.get("type")
    if kind == "boolean":
        return "false"
    if kind == "integer":
        assert "minimum" in schema and "maximum" in schema, schema
        return max(str(schema["minimum"]), str(schema["maximum"]), key=len)
    assert kind == "string", schema
    pattern = schema.get("pattern")
    if pattern == UUID_PATTERN:
        return "f" * 36
    if pattern == DATE_TIME_PATTERN:
        return "2999-12-31T23:59:59.123456789+23:59"
    assert "maxLength" in schema, f"an unbounded string: {schema}"
    if pattern == CURSOR_PATTERN:
        return "+" * schema["maxLength"]
    return "€" * schema["maxLength"]  # three bytes of UTF-8, nine characters encoded


def longest_query(parameters: list[dict]) -> list[tuple[str, str]]:
    pairs = []
    for parameter in parameters:
        if parameter["in"] != "query":
            continue
        schema = parameter["schema"]
        if schema.get("type") == "array":
            assert "maxItems" in schema, f"{parameter['name']}: an unbounded list"
            pairs += [(parameter["name"], longest(schema["items"]))] * schema["maxItems"]
        else:
            pairs.append((parameter["name"], longest(schema)))
    return pairs


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_gunicorn_reads_the_request_line_the_schema_states():
    assert gunicorn_setting("limit_request_line") == REQUEST_LINE_MAX == 8190


def test_the_longest_request_every_operation_admits_fits_in_a_request_line(schema):
    checked = 0
    for path, method, operation in operations(schema):
        pairs = longest_query(operation.get("parameters", []))
        target = path.replace("{uuid}", "f" * 36)
        query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)
        line = f"{method.upper()} {target}{'?' + query if query else ''} HTTP/1.1"
        assert len(line.encode()) <= REQUEST_LINE_MAX, f"{method.upper()} {path}: {len(line)} bytes"
        assert len(pairs) <= settings.DATA_UPLOAD_MAX_NUMBER_FIELDS, f"{method.upper()} {path}: {len(pairs)} fields"
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header":
                header = f"{parameter['name']}: {longest(parameter['schema'])}"
                assert len(header.encode()) <= HEADER_LINE_MAX, f"{method.upper()} {path}: {parameter['name']}"
        checked += 1
    assert checked >= 19


def test_every_operation_documents_the_414_of_a_request_line_too_long(schema):
    for path, method, operation in operations(schema):
        too_long = operation["responses"].get("414")
        assert too_long, f"{method.upper()} {path}"
        assert too_long["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert "uri_too_long" in too_long["description"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn():
    """The service as production runs it: gunicorn reading gunicorn.conf.py from the checkout."""
    port = _free_port()
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": "sqlite://:memory:", "LOG_LEVEL": "ERROR"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn_bin = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn_bin), "communications_project.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def raw_get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_a_request_line_too_long_is_a_json_414_in_the_error_shape(gunicorn):
    status, headers, body = raw_get(gunicorn, "/v3/communications?client_uuid=" + "f" * REQUEST_LINE_MAX)
    assert status == 414
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "type": "client_error",
        "errors": [
            {
                "code": "uri_too_long",
                "detail": "The request line is longer than 8190 bytes; send fewer values per request.",
                "attr": None,
            }
        ],
    }


def test_a_request_line_within_the_limit_reaches_the_service(gunicorn):
    target = "/healthz?" + "a" * (REQUEST_LINE_MAX - len("GET /healthz? HTTP/1.1") - 10)
    status, headers, body = raw_get(gunicorn, target)
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_a_malformed_request_is_answered_in_the_error_shape_too(gunicorn):
    status, headers, body = raw_get(gunicorn, "/healthz bad")
    assert status == 400
    assert json.loads(body)["errors"][0]["code"] == "bad_request"
