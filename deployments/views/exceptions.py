"""Granting and revoking a service's Dockerfile-policy exceptions (platform admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views import View

from portal.actors import Actor

from ..models import PolicyException, Service
from ..services.exceptions import policy_exception_grant, policy_exception_revoke


class PolicyExceptionView(LoginRequiredMixin, View):
    """POST grant (subject, justification, days) or revoke (exception id)."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        service = get_object_or_404(Service, name=name)
        actor = Actor(user=request.user)
        revoke = request.POST.get("revoke", "")
        try:
            if revoke.isdigit():
                exception = get_object_or_404(PolicyException, pk=int(revoke), service=service)
                policy_exception_revoke(actor=actor, exception=exception)
                messages.success(request, _("Exception %(s)s ended.") % {"s": exception.subject})
            else:
                days = request.POST.get("days", "")
                exception = policy_exception_grant(
                    actor=actor,
                    service=service,
                    subject=request.POST.get("subject", ""),
                    justification=request.POST.get("justification", ""),
                    days=int(days) if days.isdigit() else 0,
                )
                messages.success(request, str(exception))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        return redirect("deployments:service-detail", name=service.name)
