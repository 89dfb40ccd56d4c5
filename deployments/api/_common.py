"""What the deployments API's resources share: YAML answers and the service-name lookup."""

from __future__ import annotations

from typing import Any

import yaml
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, renderers

from portal.actors import Actor

from ..selectors import BadServiceName, service_get

# Kubernetes YAML, one or more documents: described as any value, since clients that parse the
# YAML (schemathesis does) get mappings, not the text.
YAML_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.ANY, description="Kubernetes YAML (one or more documents)."
)


class YamlRenderer(renderers.BaseRenderer):
    """text/yaml: strings as they are, anything else (errors) dumped as YAML."""

    media_type = "text/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, str):
            return data.encode()
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _service_or_400(name: str, actor: Actor | None = None) -> Any:
    """The service `name` (400 for a malformed name); with `actor`, 404 unless readable."""
    try:
        return service_get(name, actor=actor)
    except BadServiceName as exc:
        raise exceptions.ValidationError({"service": str(exc)}) from exc


def _yaml_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/yaml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
