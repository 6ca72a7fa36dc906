"""The communications API (SPEC §6): thin views over selectors (reads) and services (writes)."""

import uuid

import orjson
from django.urls import reverse
from django.utils import translation
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from communications_project.api import (
    IF_MATCH,
    TOO_LARGE,
    UUID_PATTERN,
    UUID_RE,
    ErrorResponseSerializer,
    etag,
    expected_version,
    reject_unknown_params,
)
from communications_project.db import reads_replica
from communications_project.idempotency import KEY_REUSE_RULE, idempotency_key_parameter, run_idempotent
from communications_project.permissions import ADD, CHANGE, DELETE, VIEW
from communications_project.renderers import ORJSONRenderer

from .. import events, selectors, services
from ..filtersets import CommunicationFilterSet
from ..models import FINAL_STATUSES, CommunicationEvent, EventType, Source, Status
from . import schema  # noqa: F401  (registers the OpenAPI extensions of the per-method bodies)
from .pagination import CommunicationCursorPagination, StrictOrderingFilter
from .rows import VIEWS
from .serializers import (
    AttemptCreateSerializer,
    AttemptRecordedSerializer,
    AttemptSerializer,
    CancelSerializer,
    CloseSerializer,
    CollectionRequestSerializer,
    CollectionResponseSerializer,
    CommunicationCreateSerializer,
    CommunicationFullSerializer,
    CommunicationShortSerializer,
    CommunicationUpdateSerializer,
    CommunicationWithHistorySerializer,
    EventPageSerializer,
    FailSerializer,
    HistoryEntrySerializer,
    PrimaryInfoSerializer,
    StartSerializer,
    StatusSerializer,
)

VIEW_PARAM = OpenApiParameter("view", enum=["full", "short"], default="full", description="Fields to return.")
LIST_VIEW_PARAM = OpenApiParameter("view", enum=["full", "short"], default="short", description="Fields to return.")
INCLUDE_PARAM = OpenApiParameter(
    "include", enum=["", "history"], required=False, description="`history` adds the history; empty adds nothing."
)
IDEMPOTENCY_KEY = idempotency_key_parameter(
    "Retries with the same key and body within 24 h replay the first answer and create nothing."
)
CONFLICT = OpenApiResponse(ErrorResponseSerializer, description="transition_not_allowed: the status does not allow it.")
PRECONDITION = OpenApiResponse(ErrorResponseSerializer, description="precondition_failed: If-Match is stale.")

LIST_PARAMS = {"cursor", "page_size", "ordering", "count", "view"}


def _choice_param(request, name: str, allowed: set[str], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise ValidationError({name: [f"Expected one of: {', '.join(sorted(allowed))}."]}, code="invalid_choice")
    return value


def _read_one(uuid, view: str) -> tuple[dict, str]:
    """One communication as the view shows it, and its ETag."""
    rows = VIEWS[view]
    row = selectors.communication_row(uuid, list(dict.fromkeys([*rows.columns, "version"])))
    return rows.to_representation(row), etag(row["version"])


def _with_etag(communication, *, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
    """The full view after a write, read back as GET reads it (with its oracle_id)."""
    body, tag = _read_one(communication.uuid, "full")
    return Response(_json(body), status=status_code, headers={"ETag": tag, **(headers or {})})


def _json(body):
    """In JSON's own types, as a DRF serializer gives them: the idempotency store keeps this body."""
    return orjson.loads(ORJSONRenderer().render(body))


def transition_schema(name: str, request_serializer, summary: str):
    return extend_schema(
        summary=summary,
        request=request_serializer,
        parameters=[IF_MATCH],
        responses={200: CommunicationFullSerializer, 409: CONFLICT, 412: PRECONDITION, 413: TOO_LARGE},
        operation_id=f"communications_{name}",
    )


class CommunicationViewSet(viewsets.GenericViewSet):
    queryset = selectors.communication_queryset()
    serializer_class = CommunicationFullSerializer
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    filterset_class = CommunicationFilterSet
    pagination_class = CommunicationCursorPagination
    ordering_fields = ["date_created", "date_planned_start"]
    lookup_field = "uuid"
    action_permissions = {
        "retrieve": VIEW,
        "list": VIEW,
        "collection": VIEW,
        "primary_info": VIEW,
        "history": VIEW,
        "attempts": VIEW,
        "record_attempt": CHANGE,
        "create": ADD,
        "partial_update": CHANGE,
        "start": CHANGE,
        "close": CHANGE,
        "failed": CHANGE,
        "cancel": CHANGE,
        "destroy": DELETE,
    }

    def get_queryset(self):
        return selectors.communication_queryset()

    # Reads

    @extend_schema(
        summary="One communication",
        parameters=[VIEW_PARAM, INCLUDE_PARAM],
        responses={200: CommunicationWithHistorySerializer},
    )
    @reads_replica
    def retrieve(self, request, uuid: str, **kwargs):
        view = _choice_param(request, "view", set(VIEWS), "full")
        include = _choice_param(request, "include", {"", "history"}, "")
        body, tag = _read_one(uuid, view)
        if include == "history":
            history = selectors.communication_history(body["uuid"])
            body["history"] = HistoryEntrySerializer(history, many=True).data
        return Response(body, headers={"ETag": tag})

    @extend_schema(
        summary="Filtered list, cursor-paginated",
        parameters=[
            LIST_VIEW_PARAM,
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 500}, description="Default 50."),
            OpenApiParameter("count", bool, description="Add the total count (costs a COUNT)."),
            OpenApiParameter(
                "ordering",
                enum=["date_created", "-date_created", "date_planned_start", "-date_planned_start"],
                description="Default -date_created. By date_planned_start: only what has one.",
            ),
        ],
        responses={200: CommunicationShortSerializer(many=True)},
    )
    @reads_replica
    def list(self, request, **kwargs):
        reject_unknown_params(request, LIST_PARAMS | set(CommunicationFilterSet.base_filters))
        view = _choice_param(request, "view", set(VIEWS), "short")
        rows = VIEWS[view]
        page = self.paginate_queryset(self.filter_queryset(selectors.communication_rows(rows.columns)))
        return self.get_paginated_response(rows.many(page))

    @extend_schema(
        summary="Communications by UUIDs, in request order",
        request=CollectionRequestSerializer,
        responses={200: CollectionResponseSerializer, 413: TOO_LARGE},
        operation_id="communications_collection",
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    @reads_replica
    def collection(self, request, **kwargs):
        params = CollectionRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        uuids = list(dict.fromkeys(params.validated_data["uuids"]))  # de-duplicated, order kept
        rows = VIEWS[params.validated_data["view"]]
        found = selectors.communications_by_uuids(uuids, rows.columns)
        return Response(
            {
                "results": rows.many(found[u] for u in uuids if u in found),
                "not_found": [str(u) for u in uuids if u not in found],
            }
        )

    @extend_schema(summary="What the CRM card shows", responses={200: PrimaryInfoSerializer})
    @action(detail=True, methods=["get"], url_path="primary-info", filter_backends=[], pagination_class=None)
    @reads_replica
    def primary_info(self, request, uuid: str, **kwargs):
        return Response(PrimaryInfoSerializer(selectors.communication_get(uuid)).data)

    @extend_schema(summary="History of a communication", responses={200: HistoryEntrySerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    @reads_replica
    def history(self, request, uuid: str, **kwargs):
        communication = selectors.communication_get(uuid)
        return Response(HistoryEntrySerializer(selectors.communication_history(communication), many=True).data)

    @extend_schema(
        summary="Attempts to reach the client, newest first",
        description="At most 100; `attempts_count` of the communication counts them all.",
        responses={200: AttemptSerializer(many=True)},
        operation_id="communications_attempts_list",
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    @reads_replica
    def attempts(self, request, uuid: str, **kwargs):
        reject_unknown_params(request, set())
        row = selectors.communication_row(uuid, ["uuid"])
        return Response(AttemptSerializer(selectors.attempt_list(row["uuid"]), many=True).data)

    # Writes

    @extend_schema(
        summary="Record an attempt to reach the client (made outside the service)",
        description=(
            "Counts on the communication (`attempts_count`, `last_attempt_at`, `last_attempt_outcome`). "
            "For a planned communication the attempt policy then re-plans it after an unsuccessful "
            "attempt, or fails it at the limit (history source `policy`); `reached` changes no status."
        ),
        request=AttemptCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: AttemptRecordedSerializer,
            409: OpenApiResponse(
                ErrorResponseSerializer,
                description="transition_not_allowed: the communication is final; idempotency_request_in_flight.",
            ),
            413: TOO_LARGE,
            422: OpenApiResponse(ErrorResponseSerializer, description="idempotency_key_reused"),
        },
        operation_id="communications_attempts_create",
    )
    @action(detail=True, methods=["post"], url_path="attempts", filter_backends=[], pagination_class=None)
    def record_attempt(self, request, uuid: str, **kwargs):
        def execute() -> Response:
            data = AttemptCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            attempt = services.attempt_record(uuid=uuid, actor=request.user, source=Source.API, **data.validated_data)
            body = dict(AttemptSerializer(attempt).data)
            body["communication"], tag = _read_one(attempt.communication_id, "full")
            return Response(_json(body), status=status.HTTP_201_CREATED, headers={"ETag": tag})

        return run_idempotent(request, execute)

    @extend_schema(
        summary="Create a communication",
        description=(
            "The body is the one of its `method`, with that method's `details`. Rules between fields, "
            "which OpenAPI cannot state, are in the properties' descriptions and `x-` keywords: a planned "
            "communication needs `date_planned_start` and takes no `date_start`, an actual one no planned "
            "dates; `date_planned_finish` not before `date_planned_start`; `date_start` not in the future. "
            + KEY_REUSE_RULE
        ),
        request=CommunicationCreateSerializer,
        examples=[
            OpenApiExample(
                "A planned call",
                request_only=True,
                value={
                    "method": "call",
                    "kind": "planned",
                    "direction": "outbound",
                    "client_uuid": "0191f1c2-6a3e-7c1d-9b8a-3f2e1d0c9b8a",
                    "subject": "Пригласить на тест-драйв",
                    "details": {"phone": "+79161234567"},
                    "date_planned_start": "2099-06-01T10:00:00+03:00",
                },
            )
        ],
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: CommunicationFullSerializer,
            409: OpenApiResponse(ErrorResponseSerializer, description="idempotency_request_in_flight"),
            413: TOO_LARGE,
            422: OpenApiResponse(ErrorResponseSerializer, description="idempotency_key_reused"),
        },
    )
    def create(self, request, **kwargs):
        def execute() -> Response:
            data = CommunicationCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            communication = services.communication_create(actor=request.user, source=Source.API, **data.validated_data)
            location = request.build_absolute_uri(reverse("communication-detail", kwargs={"uuid": communication.uuid}))
            return _with_etag(communication, status_code=status.HTTP_201_CREATED, headers={"Location": location})

        return run_idempotent(request, execute)

    @extend_schema(
        summary="Change editable fields",
        request=CommunicationUpdateSerializer,
        parameters=[IF_MATCH],
        responses={200: CommunicationFullSerializer, 409: CONFLICT, 412: PRECONDITION, 413: TOO_LARGE},
    )
    def partial_update(self, request, uuid: str, **kwargs):
        data = CommunicationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        communication = services.communication_update(
            uuid=uuid,
            actor=request.user,
            source=Source.API,
            data=data.validated_data,
            expected_version=expected_version(request),
        )
        return _with_etag(communication)

    @extend_schema(
        summary="Delete (soft; restorable in admin)",
        parameters=[IF_MATCH],
        responses={204: None, 412: PRECONDITION},
    )
    def destroy(self, request, uuid: str, **kwargs):
        services.communication_delete(
            uuid=uuid, actor=request.user, source=Source.API, expected_version=expected_version(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _transition(self, request, uuid: str, name: str, serializer_class) -> Response:
        params = serializer_class(data=request.data)
        params.is_valid(raise_exception=True)
        communication = services.communication_transition(
            uuid=uuid,
            name=name,
            actor=request.user,
            source=Source.API,
            expected_version=expected_version(request),
            **params.validated_data,
        )
        return _with_etag(communication)

    @transition_schema("start", StartSerializer, "Start a planned communication (created → in_work)")
    @action(detail=True, methods=["patch"])
    def start(self, request, uuid: str, **kwargs):
        return self._transition(request, uuid, "start", StartSerializer)

    @transition_schema("close", CloseSerializer, "Close as done")
    @action(detail=True, methods=["patch"])
    def close(self, request, uuid: str, **kwargs):
        return self._transition(request, uuid, "close", CloseSerializer)

    @transition_schema("failed", FailSerializer, "Mark as failed (аут)")
    @action(detail=True, methods=["patch"])
    def failed(self, request, uuid: str, **kwargs):
        return self._transition(request, uuid, "fail", FailSerializer)

    @transition_schema("cancel", CancelSerializer, "Cancel a planned communication")
    @action(detail=True, methods=["post"])
    def cancel(self, request, uuid: str, **kwargs):
        return self._transition(request, uuid, "cancel", CancelSerializer)


class CommunicationStatusListView(APIView):
    """The statuses dictionary, with the Russian names the CRM shows."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Statuses dictionary", responses={200: StatusSerializer(many=True)})
    def get(self, request, **kwargs):
        with translation.override("ru"):
            body = [
                {"code": value, "name": str(label), "is_final": value in FINAL_STATUSES}
                for value, label in Status.choices
            ]
        return Response(body)


FEED_PARAMS = {"after", "type", "subject", "page_size"}
FEED_PAGE_SIZE = 100
FEED_SUBJECTS_MAX = 100
CURSOR = {"type": "string", "pattern": events.CURSOR_RE.pattern, "maxLength": 32}


def _items(request, name: str) -> list[str]:
    """A parameter's values, repeated or comma-separated; an empty one is kept, to be refused (as the
    list's filters do: `?subject=` is a mistake, not "no filter")."""
    return [item for value in request.query_params.getlist(name) for item in value.split(",")]


def _feed_params(request) -> dict:
    reject_unknown_params(request, FEED_PARAMS)
    params: dict = {"after": None, "limit": FEED_PAGE_SIZE}
    after = request.query_params.get("after")
    if after is not None:
        try:
            params["after"] = events.Position.parse(after)
        except ValueError as error:
            raise ValidationError({"after": [str(error)]}, code="invalid")
    raw = request.query_params.get("page_size")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= events.PAGE_SIZE_MAX:
            raise ValidationError({"page_size": [f"A whole number from 1 to {events.PAGE_SIZE_MAX}."]}, code="invalid")
        params["limit"] = int(raw)
    types = _items(request, "type")
    if len(types) > len(EventType.values):  # as sent, like the schema's maxItems
        raise ValidationError({"type": [f"At most {len(EventType.values)} values."]}, code="max_length")
    unknown = sorted(set(types) - set(EventType.values))
    if unknown:
        raise ValidationError(
            {"type": [f"Unknown: {', '.join(unknown)}; expected: {', '.join(EventType.values)}."]},
            code="invalid_choice",
        )
    params["types"] = types
    subjects = _items(request, "subject")
    if len(subjects) > FEED_SUBJECTS_MAX:
        raise ValidationError({"subject": [f"At most {FEED_SUBJECTS_MAX} UUIDs."]}, code="max_length")
    if not all(UUID_RE.fullmatch(subject) for subject in subjects):
        raise ValidationError({"subject": ["Must be communication UUIDs."]}, code="invalid")
    params["subjects"] = [uuid.UUID(subject) for subject in subjects]
    return params


class CommunicationEventListView(GenericAPIView):
    """The change feed (docs/EVENTS.md): every change to a communication, in one order that never skips."""

    queryset = CommunicationEvent.objects.none()  # names the model whose view permission the feed needs
    filter_backends = []
    pagination_class = None

    @extend_schema(
        summary="The change feed: events after a cursor",
        description=(
            "Every change to a communication as a CloudEvent, in feed order. Pass the `next` of the last "
            "answer (or the `sequence` of the last event you processed) as `after`; without `after`, from "
            "the oldest event kept. A consumer reading after a cursor never later meets an event at or "
            "before it. Dedupe by `id`; per communication, `data.version` only grows."
        ),
        parameters=[
            OpenApiParameter("after", CURSOR, description="A cursor: `next`, `now` or an event's `sequence`."),
            OpenApiParameter(
                "type",
                {
                    "type": "array",
                    "minItems": 1,  # `type=` is an empty value, refused; `type` left out is every type
                    "maxItems": len(EventType.values),
                    "items": {"type": "string", "enum": EventType.values},
                },
                explode=False,
                description="Only these types (comma-separated or repeated).",
            ),
            OpenApiParameter(
                "subject",
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": FEED_SUBJECTS_MAX,
                    "items": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
                },
                explode=False,
                description="Only these communications (comma-separated or repeated).",
            ),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": events.PAGE_SIZE_MAX},
                description=f"Default {FEED_PAGE_SIZE}.",
            ),
        ],
        responses={
            200: EventPageSerializer,
            410: OpenApiResponse(
                ErrorResponseSerializer,
                description="cursor_expired: events after the cursor were purged; resynchronise, then follow `now`.",
            ),
        },
        operation_id="communications_events",
    )
    @reads_replica
    def get(self, request, **kwargs):
        page = events.event_page(**_feed_params(request))
        return Response(
            {
                "results": [event.envelope() for event in page.events],
                "next": page.next.cursor,
                "has_more": page.has_more,
                "now": page.now.cursor,
            }
        )
