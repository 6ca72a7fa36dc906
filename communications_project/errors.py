"""Domain errors and the one place that turns any error into the standard shape (SPEC §6.2).

Services raise `DomainError` subclasses (or Django's `ValidationError`); views never catch them.
"""

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import as_serializer_error

from . import observability

logger = logging.getLogger("communications_project.errors")

# What a lost or refused database connection raises (connection refused, server restarting,
# connection terminated, statement or lock timeouts): transient, worth a retry, never a 500.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
try:  # the driver's own classes, for the rare paths where Django does not wrap them
    import psycopg

    DATABASE_UNAVAILABLE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # SQLite only
    pass


class DomainError(Exception):
    """A refusal the service makes on purpose, with a stable code and an HTTP status."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"
    default_detail: str = "The request cannot be completed."
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None):
        self.detail = detail or self.default_detail
        # Extra top-level keys for the error body, e.g. the existing pair of a conflict.
        self.extra = extra or {}
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "Not found."


class TransitionNotAllowed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "transition_not_allowed"
    default_detail = "This transition is not allowed in the current status."


class PreconditionFailed(DomainError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    code = "precondition_failed"
    default_detail = "The resource has changed since you read it (If-Match does not match)."


class RequestTooLarge(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "request_too_large"
    default_detail = "The request body is larger than this service accepts."


class DatabaseUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "database_unavailable"
    default_detail = "The database is unavailable; retry shortly."

    @property
    def retry_after(self) -> int:
        return settings.DATABASE_RETRY_AFTER


class IdentityProviderUnavailable(DomainError):
    """The identity provider cannot be asked for the key a bearer token is signed with."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "identity_provider_unavailable"
    default_detail = "The identity provider cannot be reached to verify this token; retry shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class _APIDomainError(exceptions.APIException):
    """DRF's view of a DomainError, so the standard formatter can render it."""

    def __init__(self, error: DomainError):
        self.status_code = error.status_code
        self.extra = error.extra
        self.wait = error.retry_after  # DRF's name for what becomes Retry-After
        super().__init__(detail=error.detail, code=error.code)


def as_api_exception(error: DomainError) -> exceptions.APIException:
    """A DomainError where only DRF's exceptions will do (raised inside authentication)."""
    return _APIDomainError(error)


class ErrorFormatter(ExceptionFormatter):
    def format_error_response(self, error_response):
        body = super().format_error_response(error_response)
        for error in body["errors"]:  # a list item's error comes with its index as an int
            if error["attr"] is not None:
                error["attr"] = str(error["attr"])
        body.update(getattr(self.exc, "extra", {}))
        return body


class ErrorHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
            exc = _database_unavailable(exc)
        elif isinstance(exc, RequestDataTooBig):
            exc = RequestTooLarge()
        elif isinstance(exc, SuspiciousOperation):  # e.g. more than 1,000 query parameters
            exc = exceptions.ParseError(str(exc))
        if isinstance(exc, DomainError):
            return _APIDomainError(exc)
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(detail=as_serializer_error(exc))
        return super().convert_known_exceptions(exc)

    def get_response(self, exc, data):
        # Errors are JSON wherever they happen: the schema (YAML) and its HTML pages too. An HTML
        # error page would also ask the database for the user again, during an outage.
        request = self.context.get("request")
        if request is not None:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().get_response(exc, data)

    def get_headers(self, exc) -> dict:
        headers = super().get_headers(exc)
        # A refused credential names its own challenge: which scheme, and why (RFC 6750, 3).
        if getattr(exc, "challenge", None):
            headers["WWW-Authenticate"] = exc.challenge
        return headers

    def report_exception(self, exc, response) -> None:
        # A DomainError is an answer given on purpose (e.g. 503 while Asterisk is down), not a
        # crash: it is not reported as a server error.
        if isinstance(self.exc, (DomainError, _APIDomainError, *DATABASE_UNAVAILABLE_ERRORS)):
            response._has_been_logged = True  # Django would log it again as an error
            return
        super().report_exception(exc, response)


def _database_unavailable(error: Exception) -> DatabaseUnavailable:
    """Count and log one line (no traceback: an outage would flood the log) for a lost database."""
    observability.DATABASE_ERRORS.labels(error=type(error).__name__).inc()
    logger.warning("database unavailable", extra={"error": type(error).__name__, "reason": _first_line(error)})
    return DatabaseUnavailable()


def _first_line(error: Exception) -> str:
    # psycopg's messages name the host and port, never the password.
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else ""


def _plain_error(status_code: int, error_type: str, code: str, detail: str) -> JsonResponse:
    body = {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}
    return JsonResponse(body, status=status_code)


def not_found(request, exception=None) -> JsonResponse:
    """A URL no view answers: the same error shape as the API's own 404."""
    return _plain_error(404, "client_error", "not_found", "Not found.")


def server_error(request) -> JsonResponse:
    """Whatever failed outside DRF's views (admin, sessions, middleware). Django calls this inside
    its `except` block, so the exception is still at hand: a lost database is a 503, not a 500."""
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_UNAVAILABLE_ERRORS):
        unavailable = _database_unavailable(error)
        response = _plain_error(503, "server_error", unavailable.code, unavailable.detail)
        response["Retry-After"] = str(unavailable.retry_after)
        response._has_been_logged = True  # logged above, in one line instead of a traceback
        return response
    return _plain_error(500, "server_error", "error", "Server Error (500)")
