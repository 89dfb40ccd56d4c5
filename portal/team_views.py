"""Team pages: every member sees the teams and who holds which role; platform admins create
teams and manage any membership; maintainers manage their own team's members."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from .actors import Actor
from .choices import ROLE_RANK, Role
from .models import Team
from .team_services import membership_remove, membership_set, team_create


def _errors(exc: ValidationError) -> list[str]:
    return [str(m) for m in exc.messages]


class TeamListView(LoginRequiredMixin, View):
    """All teams with their members' count; platform admins create teams here."""

    def get(self, request: HttpRequest, errors: list[str] | None = None) -> HttpResponse:
        teams = Team.objects.prefetch_related("memberships__user").order_by("name")
        status = 400 if errors else 200
        return render(
            request,
            "portal/team_list.html",
            {"teams": teams, "errors": errors or [], "form_data": request.POST},
            status=status,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            team = team_create(
                actor=Actor(user=request.user),
                name=request.POST.get("name", "").strip(),
                display_name=request.POST.get("display_name", "").strip(),
                is_platform=request.POST.get("is_platform") == "on",
            )
        except ValidationError as exc:
            return self.get(request, errors=_errors(exc))
        messages.success(request, _("Team %(name)s created.") % {"name": team.name})
        return redirect("team-detail", name=team.name)


class TeamDetailView(LoginRequiredMixin, View):
    """A team's members and roles; managers add, change and remove members."""

    def _render(
        self, request: HttpRequest, team: Team, errors: list[str] | None = None
    ) -> HttpResponse:
        actor = Actor(user=request.user)
        mine = actor.role_in(team)
        may_manage = actor.is_platform_admin or (
            mine is not None and ROLE_RANK[mine] >= ROLE_RANK[Role.MAINTAINER]
        )
        roles = [
            (value, label)
            for value, label in Role.choices
            if value != Role.PLATFORM_ADMIN or (team.is_platform and actor.is_platform_admin)
        ]
        return render(
            request,
            "portal/team_detail.html",
            {
                "team": team,
                "memberships": team.memberships.select_related("user").order_by("user__username"),
                "may_manage": may_manage,
                "roles": roles,
                "errors": errors or [],
            },
            status=400 if errors else 200,
        )

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        return self._render(request, get_object_or_404(Team, name=name))

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        team = get_object_or_404(Team, name=name)
        actor = Actor(user=request.user)
        username = request.POST.get("username", "").strip()
        try:
            if request.POST.get("action") == "remove":
                membership_remove(actor=actor, team=team, username=username)
                messages.success(
                    request, _("%(user)s left team %(team)s.") % {"user": username, "team": team}
                )
            else:
                role = request.POST.get("role", "")
                membership_set(actor=actor, team=team, username=username, role=role)
                messages.success(
                    request,
                    _("%(user)s is %(role)s of team %(team)s.")
                    % {"user": username, "role": str(Role(role).label).lower(), "team": team},
                )
        except ValidationError as exc:
            return self._render(request, team, errors=_errors(exc))
        return redirect("team-detail", name=team.name)
