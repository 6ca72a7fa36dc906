import ipaddress
import logging
import re
import time
import uuid

from django.conf import settings
from django.core.signals import request_finished
from django.http import HttpRequest
from django.utils import translation
from django.utils.functional import SimpleLazyObject, empty

from .observability import HTTP_LATENCY, HTTP_REQUESTS, request_id_var

request_log = logging.getLogger("communications_project.requests")

# A caller's X-Request-ID is kept when it is short and plain (a UUID, a trace id); anything else
# could forge or break log lines, so it is replaced by our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Any other method is counted as "other": a label per invented method would grow without end.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the
    outermost of them saw, read from the right of X-Forwarded-For (the left is the client's to forge).

    Axes (admin login throttling) and the /metrics allow-list both ask here.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    candidate = forwarded[-count] if len(forwarded) >= count else forwarded[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _user_id(request: HttpRequest) -> int | None:
    # Read the user only if authentication already ran: evaluating the lazy user here would query
    # the database after the answer is decided (and fail again during an outage).
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    return getattr(user, "pk", None)


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "[unmatched]"  # 404s, static files: one label, not one per path
    return "/" + match.route.lstrip("^").rstrip("$")


class RequestObservabilityMiddleware:
    """The request id, one JSON log line per request and the request metrics.

    First in MIDDLEWARE, so it sees every answer, the other middlewares' included.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs a 4xx/5xx after the middlewares have returned.
        # request_finished (when the server closes the response) forgets it.
        request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(method=method, route=route, status=response.status_code).inc()
        HTTP_LATENCY.labels(method=method, route=route).observe(duration)
        request_log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 1),
                "user_id": _user_id(request),
            },
        )
        return response


def _forget_request_id(**kwargs) -> None:
    request_id_var.set(None)


request_finished.connect(_forget_request_id, dispatch_uid="communications_project.forget_request_id")


class APILanguageMiddleware:
    """The API's error details are English whatever the browser asks for; the admin stays Russian.

    Error codes are the contract and details are for developers; mixing DRF's translated messages
    with the service's English ones would be worse than either. Russian labels the CRM shows
    (statuses, methods) are chosen explicitly where they are served.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/admin/"):
            return self.get_response(request)
        with translation.override("en"):
            return self.get_response(request)
