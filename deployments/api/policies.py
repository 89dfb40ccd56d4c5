"""API of the admission policy export: `GET /api/v1/policies/kyverno.yaml`.

A multi-document YAML: the ConfigMaps holding the admitted references (sharded so each stays
under Kubernetes' object size), then the Kyverno ClusterPolicy that reads them. It lists every
team's binary artifacts and app images, so it is the platform team's (any role, scope
`deployments:read`); a service team's caller gets 403.
"""

from __future__ import annotations

import hashlib
import re

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from images.texts import Text
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.choices import Scope
from portal.models import Team

from ..manifests.kyverno import (
    CONFIGMAP_NAMESPACE,
    FAILURE_ACTIONS,
    OBJECT_BYTES_MAX,
    PolicyInputError,
    render_kyverno_policy,
)
from ..selectors.policy import kyverno_policy_input

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def _is_platform_member(actor: Actor) -> bool:
    if actor.is_system:
        return True
    if actor.user is not None and getattr(actor.user, "is_superuser", False):
        return True
    return Team.objects.filter(pk__in=actor.team_ids, is_platform=True).exists()


class KyvernoPolicyView(APIView):
    """The Kyverno ClusterPolicy generated from the catalog and the ConfigMaps it reads (YAML,
    one document per object)."""

    required_scopes = {"GET": Scope.DEPLOYMENTS_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "action",
                OpenApiTypes.STR,
                enum=list(FAILURE_ACTIONS),
                description="Enforce (default: refuse) or Audit (report only).",
            ),
            OpenApiParameter(
                "namespace",
                OpenApiTypes.STR,
                pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                description=(
                    "Namespace of the reference ConfigMaps (default "
                    f"`{CONFIGMAP_NAMESPACE}`, where Kyverno runs; Kyverno must be able to "
                    "read ConfigMaps there)."
                ),
            ),
        ],
        # Any value, as for the manifests: clients that parse the YAML get mappings.
        responses={
            (200, "text/yaml"): OpenApiResponse(
                response=OpenApiTypes.ANY,
                description=(
                    "Multi-document YAML, `kubectl apply --server-side -f -` it: first the "
                    "ConfigMaps `base-image-portal-images-<i>-of-<n>` and "
                    "`base-image-portal-artifacts-<i>-of-<n>` (data key `refs`: a JSON array of "
                    "digest-pinned references, sharded by digest), then the Kyverno v1 "
                    "ClusterPolicy `base-image-portal`, whose rule names every shard as a "
                    "`configMap` context entry. Every object is at most "
                    f"{OBJECT_BYTES_MAX} bytes as JSON, whatever the catalog's size."
                ),
            )
        },
    )
    def get(self, request: Request) -> HttpResponse:
        """Admit only approved image versions and portal-built artifacts, pinned by digest, and
        hostPath volumes under the environments' roots (`kubectl apply -f` it)."""
        actor = Actor.from_request(request)
        if not _is_platform_member(actor):
            raise exceptions.PermissionDenied(
                _(
                    "The admission policy lists every team's artifacts: only members of a "
                    "platform team (any role, scope deployments:read) may read it."
                )
            )
        action = request.query_params.get("action", "Enforce")
        if action not in FAILURE_ACTIONS:
            raise exceptions.ValidationError({"action": _("Use Enforce or Audit.")}, code="invalid")
        namespace = request.query_params.get("namespace", CONFIGMAP_NAMESPACE)
        if not _NAMESPACE.match(namespace):
            raise exceptions.ValidationError(
                {"namespace": _("Use a Kubernetes namespace name (a DNS-1123 label).")},
                code="invalid",
            )
        try:
            text = render_kyverno_policy(
                kyverno_policy_input(failure_action=action, configmap_namespace=namespace)
            )
        except PolicyInputError as exc:  # a catalog value no policy can name: fix the catalog
            raise Conflict(
                _("The catalog cannot be exported as a policy: %(problem)s")
                % {"problem": exc.args[0].render(_) if isinstance(exc.args[0], Text) else exc},
                code="policy_input",
            ) from exc
        response = HttpResponse(text, content_type="text/yaml; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="kyverno-policy.yaml"'
        response["ETag"] = '"' + hashlib.sha256(text.encode()).hexdigest() + '"'
        return response
