"""The two ways to authenticate, as the OpenAPI schema declares them (beside the admin's session)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


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
