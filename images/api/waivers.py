"""API of waivers: request, list, approve/reject (platform admins), revoke, OpenVEX export."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.params import parse_id
from portal.choices import Scope

from ..choices import VexJustification, VexStatus, WaiverScope, WaiverState
from ..models import Waiver
from ..services import (
    waiver_approve,
    waiver_list_for_actor,
    waiver_reject,
    waiver_request,
    waiver_revoke,
    waivers_openvex,
)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class WaiverSerializer(serializers.ModelSerializer):
    """A waiver as read (`active`: approved and not expired, now)."""

    requested_by = serializers.CharField(source="requested_by_repr", read_only=True)
    approved_by = serializers.CharField(
        source="approved_by.get_username", default=None, allow_null=True, read_only=True
    )
    team = serializers.CharField(source="team.name", default=None, allow_null=True, read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Waiver
        fields = [
            "id",
            "advisory_ref",
            "package_name",
            "scope",
            "image_version",
            "base_image",
            "service_name",
            "team",
            "status",
            "justification",
            "impact_statement",
            "action_statement",
            "state",
            "active",
            "requested_by",
            "approved_by",
            "decision_note",
            "expires_at",
            "decided_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_active(self, obj: Waiver) -> bool:
        return obj.state == WaiverState.APPROVED and obj.expires_at > timezone.now()


class WaiverCreateSerializer(serializers.Serializer):
    """What a waiver request carries; the service checks the rest (400 / 403 / 409)."""

    advisory_ref = serializers.CharField(max_length=100)
    package_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=WaiverScope.choices)
    image_version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    base_image = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    service_name = serializers.CharField(max_length=63, required=False, allow_blank=True)
    team = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    status = serializers.ChoiceField(choices=VexStatus.choices)
    justification = serializers.ChoiceField(
        choices=VexJustification.choices, required=False, allow_blank=True
    )
    impact_statement = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    action_statement = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField()


class WaiverNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class WaiverViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Waivers: exceptions for one advisory, reviewed by a platform admin, always expiring.

    Filters: `state`, `scope`, `advisory` (the ref as given), `active` (true/false). A team
    sees its own waivers and those of its images; platform admins see all.
    """

    serializer_class = WaiverSerializer
    required_scopes = {
        "list": Scope.IMAGES_READ,
        "retrieve": Scope.IMAGES_READ,
        "openvex": Scope.IMAGES_READ,
        "create": Scope.IMAGES_WRITE,
        "revoke": Scope.IMAGES_WRITE,
        "approve": Scope.IMAGES_REVIEW,
        "reject": Scope.IMAGES_REVIEW,
    }

    def get_queryset(self) -> QuerySet[Waiver]:
        if getattr(self, "swagger_fake_view", False):
            return Waiver.objects.none()
        waivers = waiver_list_for_actor(Actor.from_request(self.request))
        if self.action != "list":
            return waivers
        params = self.request.query_params
        if params.get("state"):
            if params["state"] not in WaiverState.values:
                raise exceptions.ValidationError(
                    {
                        "state": gettext("One of: %(values)s.")
                        % {"values": ", ".join(WaiverState.values)}
                    }
                )
            waivers = waivers.filter(state=params["state"])
        if params.get("scope"):
            if params["scope"] not in WaiverScope.values:
                raise exceptions.ValidationError(
                    {
                        "scope": gettext("One of: %(values)s.")
                        % {"values": ", ".join(WaiverScope.values)}
                    }
                )
            waivers = waivers.filter(scope=params["scope"])
        if params.get("advisory"):
            waivers = waivers.filter(advisory_ref=params["advisory"][:100])
        if params.get("image_version"):
            waivers = waivers.filter(
                image_version_id=parse_id(params["image_version"], field="image_version")
            )
        active = params.get("active")
        if active:
            now = timezone.now()
            if active.lower() in _TRUE:
                waivers = waivers.filter(state=WaiverState.APPROVED, expires_at__gt=now)
            elif active.lower() in _FALSE:
                waivers = waivers.exclude(state=WaiverState.APPROVED, expires_at__gt=now)
            else:
                raise exceptions.ValidationError({"active": gettext_lazy("true or false.")})
        return waivers

    @extend_schema(request=WaiverCreateSerializer, responses={201: WaiverSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = WaiverCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        waiver = waiver_request(
            actor=Actor.from_request(request),
            advisory_ref=data["advisory_ref"],
            scope=data["scope"],
            image_version_id=data.get("image_version"),
            base_image_id=data.get("base_image"),
            service_name=data.get("service_name", ""),
            team_id=data.get("team"),
            package_name=data.get("package_name", ""),
            status=data["status"],
            justification=data.get("justification", ""),
            impact_statement=data.get("impact_statement", ""),
            action_statement=data.get("action_statement", ""),
            expires_at=data["expires_at"],
        )
        return Response(self._data(waiver), status=status.HTTP_201_CREATED)

    def _data(self, waiver: Waiver) -> dict[str, Any]:
        return dict(self.get_serializer(Waiver.objects.get(pk=waiver.pk)).data)

    def _note(self, request: Request) -> str:
        body = WaiverNoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return str(body.validated_data.get("note") or "")

    @extend_schema(request=WaiverNoteSerializer, responses=WaiverSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """requested → approved (a platform admin other than the requester)."""
        waiver = self.get_object()
        note = self._note(request)
        return Response(
            self._data(
                waiver_approve(waiver_id=waiver.pk, actor=Actor.from_request(request), note=note)
            )
        )

    @extend_schema(request=WaiverNoteSerializer, responses=WaiverSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """requested → rejected (a platform admin other than the requester)."""
        waiver = self.get_object()
        note = self._note(request)
        return Response(
            self._data(
                waiver_reject(waiver_id=waiver.pk, actor=Actor.from_request(request), note=note)
            )
        )

    @extend_schema(request=WaiverNoteSerializer, responses=WaiverSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """requested|approved → revoked (the requester or a platform admin)."""
        waiver = self.get_object()
        note = self._note(request)
        return Response(
            self._data(
                waiver_revoke(waiver_id=waiver.pk, actor=Actor.from_request(request), note=note)
            )
        )

    @extend_schema(
        parameters=[OpenApiParameter("scope", OpenApiTypes.STR, required=False)],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"], url_path="openvex.json", url_name="openvex")
    def openvex(self, request: Request) -> Response:
        """The approved, unexpired waivers you may see, as an OpenVEX 0.2.0 document."""
        return Response(waivers_openvex(actor=Actor.from_request(request)))
