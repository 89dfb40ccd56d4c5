"""`/api/v1/services/`: list, one by name, create (maintainers of the owning team)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.rows import RowListMixin
from portal.choices import Scope
from portal.models import Team

from ..filtersets import ServiceFilterSet
from ..selectors import service_list, service_list_for_actor
from ..services import service_create
from ._common import _service_or_400
from .serializers import ServiceCreateSerializer, ServiceSerializer


class ServiceViewSet(
    RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Services: list, one by name, create (maintainers of the owning team)."""

    required_scopes = {
        "list": Scope.SERVICES_READ,
        "retrieve": Scope.SERVICES_READ,
        "create": Scope.SERVICES_WRITE,
    }
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilterSet
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Any]:
        return service_list_for_actor(Actor.from_request(self.request))

    def get_object(self) -> Any:
        name = self.kwargs["name"]
        _service_or_400(name)
        return get_object_or_404(self.get_queryset(), name=name)

    @extend_schema(request=ServiceCreateSerializer, responses={201: ServiceSerializer})
    def create(self, request: Request) -> Response:
        """Register a service; `team` defaults to the token's team."""
        data = ServiceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        actor = Actor.from_request(request)
        team_name = values.pop("team", None)
        if team_name is None:
            if actor.token is None:
                raise exceptions.ValidationError(
                    {"team": gettext_lazy("Give the owning team's name.")}
                )
            team = actor.token.team
        else:
            found = Team.objects.filter(name=team_name).first()
            if found is None:
                raise exceptions.ValidationError(
                    {"team": gettext("No team named %(team_name)r.") % {"team_name": team_name}}
                )
            team = found
        service = service_create(actor=actor, team=team, **values)
        body = ServiceSerializer(service_list().get(pk=service.pk), context={"request": request})
        return Response(body.data, status=status.HTTP_201_CREATED)
