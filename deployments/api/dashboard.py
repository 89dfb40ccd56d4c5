"""API of the home page: `GET /api/v1/dashboard/`, the same numbers as the page (for a team's
own monitoring), scoped to the caller's teams."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.actors import Actor
from portal.choices import Scope

from ..selectors.dashboard import dashboard_for_actor


class DashboardView(APIView):
    """Images by status, deployments at risk per team, EOL within 90 days, the review queue,
    deployments by base image per day, and per environment what nodes pull in volume versus
    image mode."""

    required_scopes = {"*": Scope.DEPLOYMENTS_READ}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """The dashboard as JSON."""
        return Response(dashboard_for_actor(Actor.from_request(request)).to_dict())
