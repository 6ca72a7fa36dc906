"""The two ways to authenticate, as the OpenAPI schema declares them (beside the admin's session)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_standardized_errors.openapi_serializers import ClientErrorEnum, ErrorCode401Enum
from rest_framework import serializers

from .authentication import API_KEY_EXPIRED, API_KEY_REVOKED
from .oidc import REFUSAL_CODES
from .services import IdentityConflict


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "credentials.authentication.ApiKeyAuthentication"
    name = "tokenAuth"  # the name DRF's token scheme had: generated clients keep working

    def get_security_definition(self, auto_schema):
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
        definition["description"] = (
            "An API key: `Authorization: Token <key>`. Made in the admin or with `manage.py create_api_key`."
        )
        return definition


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "credentials.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "An access token (RS256 or ES256 JWT) from the identity provider the service is configured "
                "with (OIDC_ISSUER, for the audience OIDC_AUDIENCE): `Authorization: Bearer <JWT>`."
            ),
        }


# Every code a 401 may carry: DRF's, and why a key or a token was refused (DRF_STANDARDIZED_ERRORS).
CODES_401 = [
    *ErrorCode401Enum.choices,
    *((code, code) for code in (API_KEY_EXPIRED, API_KEY_REVOKED, IdentityConflict.code, *REFUSAL_CODES)),
]


class Error401Serializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=CODES_401)
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse401Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = Error401Serializer(many=True)
