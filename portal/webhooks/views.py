"""UI of the webhooks: a team's subscriptions (create: the secret shown once), one
subscription (edit, rotate the secret, send test, delete, its delivery log) and one delivery
(attempts, the exact body, redeliver). The same services as the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache

from ..actors import Actor
from ..api.errors import Conflict
from ..choices import Role
from ..forms import model_choice_field
from ..models import Team
from ..selectors import role_holders
from .forms import WebhookForm
from .models import WebhookSubscription
from .selectors import webhook_delivery_list_for_actor, webhook_subscription_list_for_actor
from .services import (
    webhook_may_manage,
    webhook_redeliver,
    webhook_send_test,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate_secret,
    webhook_subscription_update,
)


def _managed_teams(actor: Actor) -> QuerySet[Team]:
    teams = (
        Team.objects.all()
        if actor.is_platform_admin
        else Team.objects.filter(pk__in=actor.team_ids)
    )
    return teams.filter(pk__in=[t.pk for t in teams if webhook_may_manage(actor=actor, team=t)])


def _form_errors(form: WebhookForm, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@method_decorator(never_cache, name="dispatch")
class WebhookListView(LoginRequiredMixin, View):
    """The subscriptions of the user's teams (platform admins: all); a new one."""

    template_name = "portal/webhooksubscription_list.html"

    def _render(self, request: HttpRequest, form: WebhookForm, **extra: Any) -> HttpResponse:
        actor = Actor(user=request.user)
        subscriptions = webhook_subscription_list_for_actor(actor)
        teams = model_choice_field(form, "team").queryset
        return render(
            request,
            self.template_name,
            {
                "subscriptions": subscriptions,
                "form": form,
                "may_create": teams is not None and teams.exists(),
                **extra,
            },
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = Actor(user=request.user)
        return self._render(request, WebhookForm(teams=_managed_teams(actor)))

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = Actor(user=request.user)
        teams = _managed_teams(actor)
        form = WebhookForm(request.POST, teams=teams)
        if not form.is_valid():
            response = self._render(request, form)
            response.status_code = 400
            return response
        try:
            subscription, secret = webhook_subscription_create(
                team=form.cleaned_data["team"],
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                active=form.cleaned_data["active"],
                actor=actor,
            )
        except ValidationError as exc:
            _form_errors(form, exc)
            response = self._render(request, form)
            response.status_code = 400
            return response
        return self._render(
            request, WebhookForm(teams=teams), new_subscription=subscription, secret=secret
        )


@method_decorator(never_cache, name="dispatch")
class WebhookDetailView(LoginRequiredMixin, View):
    """One subscription: edit, rotate the secret, send a test, delete; its delivery log."""

    template_name = "portal/webhooksubscription_detail.html"

    def _get(self, request: HttpRequest, pk: int) -> tuple[Actor, WebhookSubscription]:
        actor = Actor(user=request.user)
        return actor, get_object_or_404(webhook_subscription_list_for_actor(actor), pk=pk)

    def _render(
        self,
        request: HttpRequest,
        actor: Actor,
        subscription: WebhookSubscription,
        form: WebhookForm | None = None,
        status: int = 200,
        **extra: Any,
    ) -> HttpResponse:
        deliveries = webhook_delivery_list_for_actor(actor).filter(subscription=subscription)
        page = Paginator(deliveries, 25).get_page(request.GET.get("page"))
        form = form or WebhookForm(
            initial={
                "name": subscription.name,
                "url": subscription.url,
                "event_types": subscription.event_types,
                "active": subscription.active,
            }
        )
        team = subscription.team
        may_manage = webhook_may_manage(actor=actor, team=team)
        context = {
            "subscription": subscription,
            "page": page,
            "form": form,
            "may_manage": may_manage,
            # Who to ask, for the members who may only read (the 403 names them too).
            "managers": [] if may_manage else role_holders(minimum=Role.MAINTAINER, team=team),
            **extra,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor, subscription = self._get(request, pk)
        return self._render(request, actor, subscription)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor, subscription = self._get(request, pk)
        operation = request.POST.get("operation", "")
        if operation == "rotate":
            subscription, secret = webhook_subscription_rotate_secret(
                subscription=subscription, actor=actor
            )
            return self._render(request, actor, subscription, secret=secret)
        if operation == "test":
            delivery, _job = webhook_send_test(subscription=subscription, actor=actor)
            messages.success(request, _("Test event sent: delivery #%(id)d.") % {"id": delivery.pk})
            return redirect("webhook-delivery-detail", pk=delivery.pk)
        if operation == "delete":
            webhook_subscription_delete(subscription=subscription, actor=actor)
            messages.success(request, _("Webhook %(name)s deleted.") % {"name": subscription.name})
            return redirect("webhook-list")
        if operation != "update":
            messages.error(request, _("Unknown operation."))
            return self._render(request, actor, subscription, status=400)
        form = WebhookForm(request.POST)
        if not form.is_valid():
            return self._render(request, actor, subscription, form=form, status=400)
        try:
            webhook_subscription_update(
                subscription=subscription, actor=actor, changes=dict(form.cleaned_data)
            )
        except ValidationError as exc:
            _form_errors(form, exc)
            return self._render(request, actor, subscription, form=form, status=400)
        messages.success(request, _("Webhook %(name)s saved.") % {"name": subscription.name})
        return redirect("webhook-detail", pk=subscription.pk)


class WebhookDeliveryDetailView(LoginRequiredMixin, View):
    """One delivery: its attempts, the body that was signed, redeliver."""

    template_name = "portal/webhookdelivery_detail.html"

    def _get(self, request: HttpRequest, pk: int) -> tuple[Actor, Any]:
        actor = Actor(user=request.user)
        delivery = get_object_or_404(
            webhook_delivery_list_for_actor(actor).defer(None).prefetch_related("tries"), pk=pk
        )
        return actor, delivery

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor, delivery = self._get(request, pk)
        return render(
            request,
            self.template_name,
            {
                "delivery": delivery,
                "may_manage": webhook_may_manage(actor=actor, team=delivery.subscription.team),
                "live": delivery.state == "pending",
            },
        )

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor, delivery = self._get(request, pk)
        try:
            again, _job = webhook_redeliver(delivery=delivery, actor=actor)
        except Conflict as exc:
            messages.error(request, str(exc.detail))
            return redirect("webhook-delivery-detail", pk=delivery.pk)
        except PermissionDenied:
            raise
        messages.success(request, _("Redelivery started: delivery #%(id)d.") % {"id": again.pk})
        return redirect("webhook-delivery-detail", pk=again.pk)
