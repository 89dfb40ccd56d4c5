"""API of the admission policy export: `GET /api/v1/policies/kyverno.yaml`.

The policy lists every team's binary artifacts and app images, so it is the platform team's
(any role, scope `deployments:read`); a service team's caller gets 403.
"""

from __future__ import annotations

import hashlib

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

from ..manifests.kyverno import FAILURE_ACTIONS, PolicyInputError, render_kyverno_policy
from ..selectors.policy import kyverno_policy_input


def _is_platform_member(actor: Actor) -> bool:
    if actor.is_system:
        return True
    if actor.user is not None and getattr(actor.user, "is_superuser", False):
        return True
    return Team.objects.filter(pk__in=actor.team_ids, is_platform=True).exists()


class KyvernoPolicyView(APIView):
    """The Kyverno ClusterPolicy generated from the catalog (YAML, one document)."""

    required_scopes = {"GET": Scope.DEPLOYMENTS_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "action",
                OpenApiTypes.STR,
                enum=list(FAILURE_ACTIONS),
                description="Enforce (default: refuse) or Audit (report only).",
            )
        ],
        # Any value, as for the manifests: clients that parse the YAML get mappings.
        responses={
            (200, "text/yaml"): OpenApiResponse(
                response=OpenApiTypes.ANY, description="A Kyverno v1 ClusterPolicy (YAML)."
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
        try:
            text = render_kyverno_policy(kyverno_policy_input(failure_action=action))
        except PolicyInputError as exc:  # a catalog value no policy can name: fix the catalog
            raise Conflict(
                _("The catalog cannot be exported as a policy: %(problem)s")
                % {"problem": exc.args[0].render(_) if isinstance(exc.args[0], Text) else exc},
                code="policy_input",
            ) from exc
        response = HttpResponse(text, content_type="text/yaml; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="kyverno-clusterpolicy.yaml"'
        response["ETag"] = '"' + hashlib.sha256(text.encode()).hexdigest() + '"'
        return response
