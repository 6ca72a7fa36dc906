"""Cursor pagination and ordering of the list (SPEC §6.1), strict about their parameters."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


class StrictOrderingFilter(OrderingFilter):
    """`ordering` is one field the view allows, optionally with `-`; anything else is a 400.

    Ordering by `date_planned_start` lists only what has one (planned communications): a cursor
    cannot step over rows without a position.
    """

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get(self.ordering_param)
        if value is None:
            return None
        if value.lstrip("-") not in view.ordering_fields:
            choices = ", ".join(f"{field}, -{field}" for field in view.ordering_fields)
            raise ValidationError({self.ordering_param: [f"Expected one of: {choices}."]}, code="invalid_choice")
        return (value, "uuid" if not value.startswith("-") else "-uuid")

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if ordering is None:
            return queryset
        field = ordering[0].lstrip("-")
        return queryset.filter(**{f"{field}__isnull": False}).order_by(*ordering)


# DRF's cursor: base64 of its offset, direction and position (a date-time), some 80 characters.
CURSOR_PATTERN = "^[A-Za-z0-9+/=]*$"
CURSOR_MAX_LENGTH = 200


class CommunicationCursorPagination(CursorPagination):
    ordering = ("-date_created", "-uuid")
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}, code="invalid"
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get("count", "false")
        if raw not in ("true", "false"):
            raise ValidationError({"count": ["Expected true or false."]}, code="invalid")
        self.count = queryset.count() if raw == "true" else None
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        body = {"next": self.get_next_link(), "previous": self.get_previous_link()}
        if self.count is not None:
            body["count"] = self.count
        body["results"] = data
        return Response(body)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and len(encoded) > CURSOR_MAX_LENGTH:  # what the schema states
            raise NotFound(self.invalid_cursor_message)
        return super().decode_cursor(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:  # bounded, for the request line's sake
                parameter["schema"].update(pattern=CURSOR_PATTERN, maxLength=CURSOR_MAX_LENGTH)
                parameter["description"] = "The `next` or `previous` link's cursor, as it is."
        return parameters

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"] = {"type": "integer", "description": "Only with ?count=true."}
        return response
