"""API of the webhooks: `/api/v1/webhooks/` (subscriptions; rotate-secret, test, deliveries)
and `/api/v1/webhooks/deliveries/` (the delivery log; redeliver)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..actors import Actor
from ..api.responses import job_accepted
from ..choices import Scope
from ..models import Team
from .choices import EventType
from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from .selectors import webhook_delivery_list_for_actor, webhook_subscription_list_for_actor
from .services import (
    webhook_redeliver,
    webhook_send_test,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate_secret,
    webhook_subscription_update,
)


class WebhookSubscriptionSerializer(serializers.ModelSerializer[WebhookSubscription]):
    """A subscription (its secret is only in the create and rotate-secret answers)."""

    team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    event_types = serializers.ListField(child=serializers.ChoiceField(EventType.choices))

    class Meta:
        model = WebhookSubscription
        fields = ["id", "team", "name", "url", "event_types", "active", "created_at", "updated_at"]


class WebhookCreateSerializer(serializers.Serializer[Any]):
    """The body of a new subscription."""

    team = serializers.CharField(max_length=63, required=False)
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=20)
    active = serializers.BooleanField(default=True)


class WebhookUpdateSerializer(serializers.Serializer[Any]):
    """The fields a PATCH may change."""

    name = serializers.CharField(max_length=100, required=False)
    url = serializers.CharField(max_length=500, required=False)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=20, required=False
    )
    active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer[WebhookAttempt]):
    """One HTTP request of a delivery."""

    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "job",
            "started_at",
            "duration_ms",
            "status_code",
            "succeeded",
            "error",
            "response_excerpt",
        ]


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    """A delivery in the log."""

    subscription: serializers.PrimaryKeyRelatedField[WebhookSubscription] = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event_id",
            "event_type",
            "subject",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "is_test",
            "redelivery_of",
            "created_at",
            "finished_at",
        ]


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    """A delivery with its body (the exact bytes signed) and every attempt."""

    body = serializers.CharField()
    attempts_log = WebhookAttemptSerializer(source="tries", many=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "body", "attempts_log"]


def _with_secret(subscription: WebhookSubscription, secret: str, request: Request) -> Response:
    data = dict(WebhookSubscriptionSerializer(subscription, context={"request": request}).data)
    data["secret"] = secret
    data["secret_notice"] = str(
        _("Store the secret now: it is not shown again (rotate-secret makes a new one).")
    )
    response = Response(data, status=status.HTTP_201_CREATED)
    response["Cache-Control"] = "no-store"
    return response


class WebhookSubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Webhook subscriptions of the caller's teams (platform admins: every team's).

    Reading needs `webhooks:read`; creating, changing, deleting, rotating the secret and
    sending a test need `webhooks:write` and a maintainer of the team (or a platform admin).
    """

    serializer_class = WebhookSubscriptionSerializer
    lookup_value_regex = r"[0-9]+"
    required_scopes = {
        "list": Scope.WEBHOOKS_READ,
        "retrieve": Scope.WEBHOOKS_READ,
        "deliveries": Scope.WEBHOOKS_READ,
        "create": Scope.WEBHOOKS_WRITE,
        "partial_update": Scope.WEBHOOKS_WRITE,
        "destroy": Scope.WEBHOOKS_WRITE,
        "rotate_secret": Scope.WEBHOOKS_WRITE,
        "test": Scope.WEBHOOKS_WRITE,
        "*": Scope.WEBHOOKS_READ,  # other methods (PUT): 405 for those who may read
    }
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return webhook_subscription_list_for_actor(Actor.from_request(self.request))

    def _team(self, actor: Actor, name: str | None) -> Team:
        if name:
            team = Team.objects.filter(name=name).first()
            if team is None or not (actor.is_platform_admin or actor.role_in(team)):
                raise serializers.ValidationError(
                    {"team": _("No team %(name)s of yours.") % {"name": name}}
                )
            return team
        if actor.token is not None:
            return actor.token.team
        teams = list(Team.objects.filter(pk__in=actor.team_ids))
        if len(teams) != 1:
            raise serializers.ValidationError({"team": _("Name the team (you belong to several).")})
        return teams[0]

    @extend_schema(request=WebhookCreateSerializer, responses={201: WebhookSubscriptionSerializer})
    def create(self, request: Request) -> Response:
        """Subscribe a team; the answer carries the signing secret, once (`no-store`)."""
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        data = body.validated_data
        subscription, secret = webhook_subscription_create(
            team=self._team(actor, data.get("team")),
            name=data["name"],
            url=data["url"],
            event_types=data["event_types"],
            active=data["active"],
            actor=actor,
        )
        return _with_secret(subscription, secret, request)

    @extend_schema(request=WebhookUpdateSerializer, responses={200: WebhookSubscriptionSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change the name, URL, event types or `active`."""
        subscription = self.get_object()
        body = WebhookUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        unknown = sorted(set(request.data) - set(WebhookUpdateSerializer().fields))
        if unknown:
            raise serializers.ValidationError(
                {"detail": _("Unknown field(s): %(f)s.") % {"f": ", ".join(unknown)}}
            )
        subscription = webhook_subscription_update(
            subscription=subscription,
            actor=Actor.from_request(request),
            changes=dict(body.validated_data),
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Delete the subscription and its delivery log."""
        webhook_subscription_delete(
            subscription=self.get_object(), actor=Actor.from_request(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={201: WebhookSubscriptionSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new secret, shown once; the old one stops signing at once."""
        subscription, secret = webhook_subscription_rotate_secret(
            subscription=self.get_object(), actor=Actor.from_request(request)
        )
        return _with_secret(subscription, secret, request)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Deliver a `io.baseimage.portal.webhook.test` event now: 202 with the job."""
        delivery, job = webhook_send_test(
            subscription=self.get_object(), actor=Actor.from_request(request)
        )
        return job_accepted(request, job, delivery=WebhookDeliverySerializer(delivery).data)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The subscription's delivery log, newest first (paginated)."""
        subscription = self.get_object()
        deliveries = webhook_delivery_list_for_actor(Actor.from_request(request)).filter(
            subscription=subscription
        )
        state = request.query_params.get("state", "")
        if state:
            from .choices import DeliveryState

            if state not in DeliveryState.values:
                raise serializers.ValidationError({"state": _("Unknown state.")})
            deliveries = deliveries.filter(state=state)
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One delivery with its body and attempts; redeliver it."""

    serializer_class = WebhookDeliveryDetailSerializer
    lookup_value_regex = r"[0-9]+"
    required_scopes = {
        "retrieve": Scope.WEBHOOKS_READ,
        "redeliver": Scope.WEBHOOKS_WRITE,
        "*": Scope.WEBHOOKS_READ,  # other methods: 405 for those who may read
    }

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return (
            webhook_delivery_list_for_actor(Actor.from_request(self.request))
            .defer(None)
            .prefetch_related("tries")
        )

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send the same event again as a new delivery: 202 with the job (409 while pending)."""
        delivery = get_object_or_404(self.get_queryset(), pk=pk)
        again, job = webhook_redeliver(delivery=delivery, actor=Actor.from_request(request))
        return job_accepted(request, job, delivery=WebhookDeliverySerializer(again).data)
