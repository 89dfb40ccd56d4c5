"""API of the navigation's search: `GET /api/v1/search/?q=` (composed here, it spans both
apps). A token sees only the groups its scopes read (images:read, services:read,
binaries:read); every group is scoped to the caller's teams as the lists are."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.actors import Actor

from ..selectors.search import SearchQueryError, search_for_actor, search_normalise


class SearchView(APIView):
    """Base images, image versions by digest prefix, services, binary versions by sha256
    prefix and image requests matching `q`, grouped, at most `group_limit` per group."""

    required_scopes = {"*": None}

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True, description="2-200 characters")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        """Search for `q`; 400 when it is missing, shorter than 2 or longer than 200 characters."""
        try:
            query = search_normalise(request.query_params.get("q", ""))
        except SearchQueryError as exc:
            raise exceptions.ValidationError({"q": [str(exc)]}) from exc
        results = search_for_actor(query=query, actor=Actor.from_request(request))
        return Response(results.to_dict())
