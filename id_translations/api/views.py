from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from communications_project.api import TOO_LARGE, UUID_PATTERN, reject_unknown_params
from communications_project.db import reads_replica
from communications_project.filters import MultiValueWidget, parse_uuid

from ..models import ORACLE_ID_MAX, IdTranslation, parse_oracle_id
from ..selectors import translations_find
from ..services import translations_create
from .serializers import (
    LOOKUP_MAX_VALUES,
    MAX_VALUES,
    ConflictSerializer,
    IdTranslationLookupSerializer,
    IdTranslationSerializer,
)

ONE_OR_MANY = PolymorphicProxySerializer(
    component_name="IdTranslationOneOrMany",
    serializers=[IdTranslationSerializer, IdTranslationSerializer(many=True, min_length=1, max_length=MAX_VALUES)],
    resource_type_field_name=None,
    many=False,
)


def _values(request, name: str, parse) -> list:
    raw = MultiValueWidget().value_from_datadict(request.query_params, None, name)
    if len(raw) > LOOKUP_MAX_VALUES:  # as sent, before duplicates go: what the schema's maxItems counts
        raise ValidationError({name: [f"At most {LOOKUP_MAX_VALUES} values."]}, code="max_length")
    values = []
    for item in raw:
        try:
            values.append(parse(item))
        except ValueError:
            raise ValidationError({name: [f"Not a valid value: {item[:100]!r}."]}, code="invalid")
    return list(dict.fromkeys(values))


def _oracle_id(text: str) -> int:
    value = parse_oracle_id(text)
    if value is None:
        raise ValueError(text)
    return value


class IdTranslationView(APIView):
    """Flora UUID ⇄ Oracle ID. Reads need `view_idtranslation`, writes `add_idtranslation`."""

    queryset = IdTranslation.objects.all()

    @extend_schema(
        summary="Look up pairs by either side",
        description=(
            "Give `flora_uuid`, `oracle_id` or both: a request with neither is 400 `required` (the whole "
            'table is not served). OpenAPI cannot state "at least one of" for parameters; '
            "`x-required-one-of` says it for tools."
        ),
        extensions={"x-required-one-of": ["flora_uuid", "oracle_id"]},
        parameters=[
            OpenApiParameter(
                "flora_uuid",
                {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
                    "maxItems": LOOKUP_MAX_VALUES,
                },
                description=f"UUIDs, repeated or comma-separated, at most {LOOKUP_MAX_VALUES}.",
                explode=True,
            ),
            OpenApiParameter(
                "oracle_id",
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": ORACLE_ID_MAX},
                    "maxItems": LOOKUP_MAX_VALUES,
                },
                description=f"Oracle IDs, repeated or comma-separated, at most {LOOKUP_MAX_VALUES}.",
                explode=True,
            ),
        ],
        responses={200: IdTranslationLookupSerializer},
    )
    @reads_replica
    def get(self, request, **kwargs):
        reject_unknown_params(request, {"flora_uuid", "oracle_id"})
        flora_uuids = _values(request, "flora_uuid", parse_uuid)
        oracle_ids = _values(request, "oracle_id", _oracle_id)
        if not flora_uuids and not oracle_ids:
            raise ValidationError(
                {"flora_uuid": ["Give flora_uuid or oracle_id: the whole table is not served."]}, code="required"
            )
        pairs = translations_find(flora_uuids=flora_uuids, oracle_ids=oracle_ids)
        found_uuids = {pair[0] for pair in pairs}
        found_ids = {pair[1] for pair in pairs}
        return Response(
            {
                "results": [{"flora_uuid": str(u), "oracle_id": i} for u, i in pairs],
                "not_found": {
                    "flora_uuid": [str(u) for u in flora_uuids if u not in found_uuids],
                    "oracle_id": [i for i in oracle_ids if i not in found_ids],
                },
            }
        )

    @extend_schema(
        summary="Create one pair or a list of up to 1,000 (all or nothing)",
        request=ONE_OR_MANY,
        responses={
            201: ONE_OR_MANY,
            200: OpenApiResponse(ONE_OR_MANY, description="Every pair already existed identically."),
            409: OpenApiResponse(ConflictSerializer, description="translation_conflict, with the conflicting pairs."),
            413: TOO_LARGE,
        },
    )
    def post(self, request, **kwargs):
        many = isinstance(request.data, list)
        if many:
            serializer = IdTranslationSerializer(
                data=request.data, many=True, min_length=1, max_length=MAX_VALUES, allow_empty=False
            )
        else:
            serializer = IdTranslationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data if many else [serializer.validated_data]
        result = translations_create(
            pairs=[(item["flora_uuid"], item["oracle_id"]) for item in items], actor=request.user
        )
        body = [{"flora_uuid": str(u), "oracle_id": i} for u, i in result.pairs]
        return Response(
            body if many else body[0], status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )
