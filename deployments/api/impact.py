"""API of the blast radius: `GET /api/v1/advisories/{id}/impact/` (composed here, a layer
above the images app's advisory API)."""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.actors import Actor
from portal.choices import Scope

from ..selectors.impact import UnknownAdvisory, advisory_impact

MAX_REF_LENGTH = 100


class AdvisoryImpactView(APIView):
    """Which image and binary versions, deployments (both modes, per environment), services
    and teams an advisory (or any record aliasing it) reaches, with counts. A service team's
    caller sees its own services' part."""

    required_scopes = {"*": Scope.IMAGES_READ}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, ref: str) -> Response:
        """The blast radius of advisory `ref` (an OSV id or an alias such as CVE-…)."""
        if len(ref) > MAX_REF_LENGTH:
            raise Http404(gettext_lazy("No advisory has an id that long."))
        try:
            impact = advisory_impact(advisory_ref=ref, actor=Actor.from_request(request))
        except UnknownAdvisory as exc:
            raise Http404(str(exc)) from exc
        return Response(impact.to_dict())
