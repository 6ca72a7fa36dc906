import hashlib
import json

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from communications_project.db import reads_replica

from ..models import CommunicationMethod
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
        methods = CommunicationMethod.objects.all()
        is_active = request.query_params.get("is_active")
        if is_active is not None:
            if is_active not in ("true", "false"):
                raise ValidationError({"is_active": ["Expected true or false."]}, code="invalid")
            methods = methods.filter(is_active=is_active == "true")
        body = CommunicationMethodSerializer(methods, many=True).data
        tag = f'"{hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]}"'
        headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
        if tag in [value.strip() for value in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(body, headers=headers)
