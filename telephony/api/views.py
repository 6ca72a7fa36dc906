import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from communications import selectors as communication_selectors
from communications.models import Communication
from communications_project.api import TOO_LARGE, ErrorResponseSerializer, reject_unknown_params
from communications_project.idempotency import KEY_REUSE_RULE, idempotency_key_parameter, run_idempotent
from communications_project.permissions import ModelPermissions

from ..ari import TelephonyNotConfigured
from ..selectors import call_list
from ..services import call_event, call_place, client_outcome_for
from .serializers import CallEventSerializer, CallLogSerializer, CallPhoneSerializer

ERROR = ErrorResponseSerializer


class CallPhoneView(APIView):
    """Click-to-call: needs `communications.call_phone`."""

    queryset = Communication.objects.none()
    permission_classes = [ModelPermissions]
    action = "call_phone"
    action_permissions = {"call_phone": "communications.call_phone"}

    @extend_schema(
        summary="Ring the employee, then dial the client (Asterisk)",
        description=KEY_REUSE_RULE,
        request=CallPhoneSerializer,
        parameters=[idempotency_key_parameter("A retried click with the same key does not ring twice.")],
        responses={
            202: CallLogSerializer,
            409: OpenApiResponse(ERROR, description="transition_not_allowed: not an outbound call, or final."),
            413: TOO_LARGE,
            422: OpenApiResponse(ERROR, description="idempotency_key_reused"),
            502: OpenApiResponse(ERROR, description="telephony_rejected: Asterisk refused, with its reason."),
            503: OpenApiResponse(ERROR, description="telephony_unavailable or telephony_not_configured."),
            504: OpenApiResponse(ERROR, description="telephony_unavailable: Asterisk did not answer in time."),
        },
        operation_id="communications_call_phone",
    )
    def post(self, request, uuid: str):
        def execute() -> Response:
            params = CallPhoneSerializer(data=request.data)
            params.is_valid(raise_exception=True)
            log = call_place(
                uuid=uuid,
                extension=params.validated_data["extension"],
                phone=params.validated_data.get("phone"),
                actor=request.user,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
            return Response(CallLogSerializer(log).data, status=status.HTTP_202_ACCEPTED)

        # No transaction around the network call; a failed attempt releases the key.
        return run_idempotent(request, execute, atomic=False)


class CommunicationCallsView(APIView):
    """The communication's call log, for the CRM card: view permission; the full phone only for
    users who may place calls themselves."""

    queryset = Communication.objects.none()
    permission_classes = [ModelPermissions]

    @extend_schema(
        summary="The communication's calls (click-to-call attempts and their outcomes), newest first",
        description="At most 100. `phone` is masked unless the user has `communications.call_phone`.",
        responses={
            200: CallLogSerializer(many=True),
            404: OpenApiResponse(ERROR, description="Unknown or deleted communication."),
        },
        operation_id="communications_calls_list",
    )
    def get(self, request, uuid: str):
        reject_unknown_params(request, set())
        communication = communication_selectors.communication_get(uuid)
        calls = call_list(communication=communication)
        mask = not request.user.has_perm("communications.call_phone")
        return Response(CallLogSerializer(calls, many=True, context={"mask_phone": mask}).data)


class TelephonySecretAuthentication(BaseAuthentication):
    """The PBX authenticates with the shared secret in `X-Telephony-Secret`."""

    HEADER = "X-Telephony-Secret"

    def authenticate(self, request):
        secret = settings.TELEPHONY_EVENTS_SECRET
        if not secret:
            raise TelephonyNotConfigured("TELEPHONY_EVENTS_SECRET is not set.")
        given = request.headers.get(self.HEADER)
        if given is None:
            return None
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise AuthenticationFailed("Wrong telephony secret.")
        return AnonymousUser(), "telephony"

    def authenticate_header(self, request):
        return f'Secret header="{self.HEADER}"'


class HasTelephonySecret(BasePermission):
    def has_permission(self, request, view):
        return request.auth == "telephony"


class TelephonyEventView(APIView):
    authentication_classes = [TelephonySecretAuthentication]
    permission_classes = [HasTelephonySecret]

    @extend_schema(
        summary="Call outcome from the PBX (answered, hangup)",
        request=CallEventSerializer,
        parameters=[
            OpenApiParameter(
                "X-Telephony-Secret",
                {"type": "string", "minLength": 1, "maxLength": 1024},
                location=OpenApiParameter.HEADER,
                required=True,
            )
        ],
        responses={
            202: CallLogSerializer,
            401: OpenApiResponse(ERROR, description="No or wrong X-Telephony-Secret."),
            404: OpenApiResponse(ERROR, description="No call with this channel ID."),
            413: TOO_LARGE,
            503: OpenApiResponse(ERROR, description="telephony_not_configured: no secret is set."),
        },
        auth=[],
    )
    def post(self, request):
        event = CallEventSerializer(data=request.data)
        event.is_valid(raise_exception=True)
        facts = dict(event.validated_data)
        facts["client_outcome"] = client_outcome_for(facts.pop("dialstatus", None))
        log = call_event(**facts)
        return Response(CallLogSerializer(log).data, status=status.HTTP_202_ACCEPTED)
