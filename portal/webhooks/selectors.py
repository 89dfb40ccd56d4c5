"""Reads of the webhooks: the subscriptions and deliveries an actor may see."""

from __future__ import annotations

from django.db.models import QuerySet

from ..actors import Actor
from .models import WebhookDelivery, WebhookSubscription


def webhook_subscription_list_for_actor(actor: Actor) -> QuerySet[WebhookSubscription]:
    """Every team's for platform admins; else the actor's teams' (a token: its own team's)."""
    subscriptions = WebhookSubscription.objects.select_related("team", "created_by")
    if actor.is_platform_admin:
        return subscriptions
    return subscriptions.filter(team_id__in=actor.team_ids)


def webhook_delivery_list_for_actor(actor: Actor) -> QuerySet[WebhookDelivery]:
    """Deliveries of the subscriptions the actor may see, newest first, without the body."""
    deliveries = WebhookDelivery.objects.select_related("subscription__team").defer("body")
    if actor.is_platform_admin:
        return deliveries
    return deliveries.filter(subscription__team_id__in=actor.team_ids)
