"""gunicorn reads this file from the working directory by itself (`gunicorn communications_project.wsgi`).

Request limits: a request line of at most 8,190 bytes, gunicorn's largest (and nginx's default
buffer). The API's list and look-up limits are chosen so that the longest query its schema admits
fits (communications_project/tests/test_request_limits.py). What gunicorn refuses itself, before
Django sees the request (414 for a longer line, 400 for a malformed one), is answered in the API's
error shape, as JSON, instead of gunicorn's HTML page.

Prometheus multiprocess mode: each worker is a process with its own counters, so every worker
writes its samples to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. The variable
must be set before a worker imports prometheus_client, hence here, in the master, at start.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn import util

limit_request_line = 8190

_MARK = "_COMMUNICATIONS_METRICS_MASTER"
_created: list[str] = []  # a directory made here is removed when gunicorn exits


def _prepare_metrics_dir() -> None:
    if os.environ.get(_MARK) == str(os.getpid()):
        return  # a reload (HUP) reads this file again: the running workers' files stay
    os.environ[_MARK] = str(os.getpid())
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="communications-metrics-")
        _created.append(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        return
    # A previous run's files would be added to this run's counts: a restart starts from zero,
    # as Prometheus expects of a restarted process.
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()


_prepare_metrics_dir()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)


# gunicorn's own refusals, by status: the `code` of the API's error shape.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    501: "not_implemented",
}
_DETAILS = {414: f"The request line is longer than {limit_request_line} bytes; send fewer values per request."}


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error answer in the API's shape (`mesg` may quote the request: left out)."""
    error = {"code": _CODES.get(status_int, "error"), "detail": _DETAILS.get(status_int, reason), "attr": None}
    body = json.dumps({"type": "server_error" if status_int >= 500 else "client_error", "errors": [error]}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_error  # the one function gunicorn's workers answer their own errors with
