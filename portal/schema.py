"""OpenAPI: describe the bearer-token authentication to drf-spectacular."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer bip_…` scoped API tokens."""

    target_class = "portal.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A scoped API token (manage.py create_token or the Tokens page).",
        }
