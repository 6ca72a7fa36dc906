import hashlib

import orjson
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from communications_project.db import reads_replica

from .. import selectors
from .serializers import CommunicationMethodSerializer

# Dictionaries change rarely; clients may keep them this long and revalidate with If-None-Match.
CACHE_CONTROL = "private, max-age=300"


class CommunicationMethodListView(APIView):
    """The methods dictionary. Readable by any authenticated caller: it holds no client data."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Methods dictionary",
        parameters=[OpenApiParameter("is_active", bool, description="Only active (true) or inactive (false).")],
        responses={200: CommunicationMethodSerializer(many=True), 304: None},
    )
    @reads_replica
    def get(self, request, **kwargs):
        is_active = request.query_params.get("is_active")
        if is_active not in (None, "true", "false"):
            raise ValidationError({"is_active": ["Expected true or false."]}, code="invalid")
        fields = CommunicationMethodSerializer.Meta.fields
        body = [
            {field: method[field] for field in fields}
            for method in selectors.methods()
            if is_active is None or method["is_active"] == (is_active == "true")
        ]
        tag = f'"{hashlib.sha256(orjson.dumps(body)).hexdigest()[:32]}"'
        headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
        if tag in [value.strip() for value in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(body, headers=headers)
