"""UI of waivers: the list, the request form (prefilled from a finding's "waive" link), the
waiver page with approve / reject (platform admins other than the requester) and revoke."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.jobs import IllegalTransition

from ..choices import VexJustification, VexStatus, WaiverScope, WaiverState
from ..services import (
    waiver_approve,
    waiver_list_for_actor,
    waiver_reject,
    waiver_request,
    waiver_revoke,
)
from ..services.waivers import waiver_max_days


class WaiverRequestForm(forms.Form):
    """What a waiver request asks for; the service checks the rest."""

    advisory_ref = forms.CharField(label=gettext_lazy("Advisory (id or CVE alias)"), max_length=100)
    package_name = forms.CharField(
        label=gettext_lazy("Package (blank: any)"), max_length=255, required=False
    )
    scope = forms.ChoiceField(label=gettext_lazy("Scope"), choices=WaiverScope.choices)
    image_version = forms.IntegerField(
        label=gettext_lazy("Image version"), required=False, min_value=1, max_value=2**31 - 1
    )
    base_image = forms.IntegerField(
        label=gettext_lazy("Base image"), required=False, min_value=1, max_value=2**31 - 1
    )
    service_name = forms.CharField(
        label=gettext_lazy("Service name"), max_length=63, required=False
    )
    team = forms.IntegerField(
        label=gettext_lazy("Team"), required=False, min_value=1, max_value=2**31 - 1
    )
    status = forms.ChoiceField(label=gettext_lazy("OpenVEX status"), choices=VexStatus.choices)
    justification = forms.ChoiceField(
        label=gettext_lazy("Justification"),
        choices=[("", "—"), *VexJustification.choices],
        required=False,
    )
    impact_statement = forms.CharField(
        label=gettext_lazy("Impact statement"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
    )
    action_statement = forms.CharField(
        label=gettext_lazy("Action statement"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
    )
    expires_at = forms.DateField(
        label=gettext_lazy("Expires on"), widget=forms.DateInput(attrs={"type": "date"})
    )


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user)


class WaiverListView(LoginRequiredMixin, View):
    """Waivers you may see; `?state=requested` is the review queue."""

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = _actor(request)
        waivers = waiver_list_for_actor(actor)
        state = request.GET.get("state", "")
        if state in WaiverState.values:
            waivers = waivers.filter(state=state)
        page = Paginator(waivers, 50).get_page(request.GET.get("page"))
        context = {
            "page": page,
            "state": state,
            "states": WaiverState.choices,
            "now": timezone.now(),
            "is_reviewer": actor.is_platform_admin,
        }
        return render(request, "images/waiver_list.html", context)


class WaiverCreateView(LoginRequiredMixin, View):
    """The request form, prefilled from `?advisory=&image_version=&package=` (a finding's
    "waive" link)."""

    def _initial(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "advisory_ref": request.GET.get("advisory", "")[:100],
            "package_name": request.GET.get("package", "")[:255],
            "scope": WaiverScope.IMAGE_VERSION,
            "status": VexStatus.NOT_AFFECTED,
            "expires_at": (timezone.now() + dt.timedelta(days=min(90, waiver_max_days()))).date(),
        }
        for key in ("image_version", "base_image", "team"):
            value = request.GET.get(key, "")
            if value.isascii() and value.isdigit() and len(value) < 10:
                initial[key] = int(value)
        if "base_image" in initial and "image_version" not in initial:
            initial["scope"] = WaiverScope.BASE_IMAGE
        if request.GET.get("service"):
            initial["service_name"] = request.GET["service"][:63]
            initial["scope"] = WaiverScope.SERVICE
        return initial

    def _render(self, request: HttpRequest, form: WaiverRequestForm) -> HttpResponse:
        return render(
            request, "images/waiver_form.html", {"form": form, "max_days": waiver_max_days()}
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, WaiverRequestForm(initial=self._initial(request)))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = WaiverRequestForm(request.POST)
        if not form.is_valid():
            return self._render(request, form)
        data = form.cleaned_data
        # The date is the last day the waiver holds: it ends at the end of that day (UTC), or
        # at the longest allowed expiry when that day is the last one allowed.
        expires = dt.datetime.combine(data["expires_at"], dt.time(23, 59, 59), tzinfo=dt.UTC)
        longest = timezone.now() + dt.timedelta(days=waiver_max_days())
        if expires > longest and data["expires_at"] <= longest.date():
            expires = longest - dt.timedelta(seconds=1)
        try:
            waiver = waiver_request(
                actor=_actor(request),
                advisory_ref=data["advisory_ref"],
                scope=data["scope"],
                image_version_id=data.get("image_version"),
                base_image_id=data.get("base_image"),
                service_name=data.get("service_name") or "",
                team_id=data.get("team"),
                package_name=data.get("package_name") or "",
                status=data["status"],
                justification=data.get("justification") or "",
                impact_statement=data.get("impact_statement") or "",
                action_statement=data.get("action_statement") or "",
                expires_at=expires,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
            return self._render(request, form)
        except (PermissionDenied, APIException) as exc:
            form.add_error(None, str(getattr(exc, "detail", exc)))
            return self._render(request, form)
        messages.success(
            request,
            gettext("Waiver #%(waiver)s requested; a platform admin reviews it.")
            % {"waiver": waiver.pk},
        )
        return redirect("images:waiver-detail", pk=waiver.pk)


class WaiverDetailView(LoginRequiredMixin, View):
    """One waiver, with the actions the viewer may take."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor = _actor(request)
        waiver = get_object_or_404(waiver_list_for_actor(actor), pk=pk)
        requester = waiver.requested_by_id == request.user.pk
        open_state = waiver.state in (WaiverState.REQUESTED, WaiverState.APPROVED)
        context = {
            "obj": waiver,
            "expired": waiver.expires_at <= timezone.now(),
            "may_decide": (
                actor.is_platform_admin and not requester and waiver.state == WaiverState.REQUESTED
            ),
            "may_revoke": open_state and (actor.is_platform_admin or requester),
        }
        return render(request, "images/waiver_detail.html", context)


_DONE = {
    "approve": gettext_lazy("Waiver #%(waiver)s: approved."),
    "reject": gettext_lazy("Waiver #%(waiver)s: rejected."),
    "revoke": gettext_lazy("Waiver #%(waiver)s: revoked."),
}


class WaiverActionView(LoginRequiredMixin, View):
    """POST approve / reject / revoke from the waiver page."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        actor = _actor(request)
        waiver = get_object_or_404(waiver_list_for_actor(actor), pk=pk)
        note = request.POST.get("note", "")[:5000]
        services = {"approve": waiver_approve, "reject": waiver_reject, "revoke": waiver_revoke}
        service = services.get(action)
        if service is None:
            return HttpResponse(status=404)
        try:
            service(waiver_id=waiver.pk, actor=actor, note=note)
            messages.success(request, str(_DONE[action]) % {"waiver": waiver.pk})
        except ValidationError as exc:  # PermissionDenied propagates: a 403 page
            messages.error(request, " ".join(exc.messages))
        except (IllegalTransition, APIException) as exc:
            messages.error(request, str(getattr(exc, "detail", exc)))
        return redirect("images:waiver-detail", pk=pk)
