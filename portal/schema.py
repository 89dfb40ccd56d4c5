"""OpenAPI: the bearer-token scheme, and the error responses every operation can give.

Every API error has one shape (portal/api/errors.py): `{"detail", "code"}`, plus `errors`
(the field-by-field messages) on a validation error. `add_error_responses`, a drf-spectacular
post-processing hook, describes it once as the `Error` component and adds, to each operation,
the error statuses the portal's shared machinery gives it:

* 400 — every operation: NUL characters in the URL (portal.api.middleware), a bad filter or
  page size, a malformed body.
* 401, 403 — every operation with a security requirement: no or a bad token, a scope or a role
  that does not allow it, an object out of the caller's teams.
* 404 — operations with path parameters (no such object, or one the caller may not see) and
  paginated lists (a page past the end).
* 409 — every write: a duplicate, or a state that does not allow the transition.
* 413 — a body over its limit (an upload, a Dockerfile, Django's form and memory limits);
  415 — a body in a media type the operation does not parse.

Errors are always `application/json`, also where success is YAML or SARIF (the exception
handler renders them with the JSON renderer).

An operation that gives another error (or these with its own description) says so with
`extend_schema(responses={503: OpenApiResponse(description=…)})`; the hook gives every error
response without a body the `Error` one and never overwrites what an operation describes.
"""

from __future__ import annotations

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


ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The body of every API error.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "description": "A stable machine-readable code."},
        "errors": {"description": "Field-by-field messages of a validation error."},
    },
    "required": ["detail", "code"],
}
_DESCRIPTIONS = {
    "400": "Invalid input: a malformed body, filter or page size, or NUL in the URL.",
    "401": "No token, or a bad, expired or revoked one.",
    "403": "The token's scopes or its person's role do not allow this.",
    "404": "No such object (or not one of the caller's), or a page past the end.",
    "409": "A duplicate, or a state that does not allow this.",
    "413": "The body is over its size limit.",
    "415": "The body is in a media type this operation does not accept.",
}
_WRITES = {"post", "put", "patch", "delete"}


def _error_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    statuses = ["400"]
    if operation.get("security") != [{}]:
        statuses += ["401", "403"]
    if any(p.get("in") == "path" for p in params) or any(p.get("name") == "page" for p in params):
        statuses.append("404")
    if method in _WRITES:
        statuses.append("409")
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        statuses += ["413", "415"]
    return statuses


def add_error_responses(result: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: the `Error` component on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and not response.get("content"):
                    response["content"] = {"application/json": {"schema": ref}}
            for status in _error_statuses(method, operation):
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result
