"""UI views of the portal package: jobs, audit log, API tokens, health."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve
from django.utils.decorators import method_decorator
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import DetailView, TemplateView

from .actors import Actor
from .api.params import id_or_none
from .auth import token_create, token_may_revoke, token_revoke
from .choices import JobState
from .forms import TokenCreateForm
from .job_errors import job_error_display
from .job_steps import job_step_display
from .jobs import IllegalTransition, job_cancel, job_create, job_kinds
from .keyset import keyset_page
from .models import ApiToken, Team
from .rowtext import clip, date_formatter, html, url_filler
from .selectors import audit_list, job_cancel_refusal, job_list_for_actor, role_holders
from .templatetags.portal_i18n import status_badge


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


class PlatformAdminRequiredMixin(LoginRequiredMixin, UserPassesTestMixin):
    """Only platform admins."""

    request: HttpRequest

    def test_func(self) -> bool:
        return Actor(user=self.request.user).is_platform_admin


JOB_ROW = """<tr>
    <td><a href="{}">#{}</a></td>
    <td>{}</td>
    <td>{}</td>
    <td><progress value="{}" max="100" title="{}%"></progress> <small>{}</small></td>
    <td>{}/{}</td>
    <td>{}</td>
    <td>{}</td>
  </tr>"""


# What the jobs table shows, as `values()` rows (as models with three relations 25 jobs took
# longer to build than to write).
JOB_COLUMNS = (
    "id",
    "kind",
    "state",
    "progress",
    "step",
    "error",
    "attempts",
    "max_attempts",
    "created_at",
    "created_by__username",
    "created_by_token__name",
)


def _job_rows(jobs: Iterable[dict[str, Any]]) -> list[SafeString]:
    """The jobs table's lines, written here (`portal.rowtext`): the URL reversed once a page,
    the date format looked up once, no template tag per cell."""
    detail = url_filler("job-detail", "pk")
    when = date_formatter("DATETIME_FORMAT")
    token_label = gettext("token %(created_by_token_name)s")
    portal_label = gettext("portal")
    rows = []
    for job in jobs:  # JOB_COLUMNS rows
        if job["created_by_token__name"] is not None:
            started_by = token_label % {"created_by_token_name": job["created_by_token__name"]}
        elif job["created_by__username"] is not None:
            started_by = job["created_by__username"]
        else:
            started_by = portal_label
        rows.append(
            html(
                JOB_ROW,
                detail(job["id"]),
                job["id"],
                job["kind"],
                status_badge(job["state"], job_error_display(job["error"] or "")),
                job["progress"],
                job["progress"],
                clip(job_step_display(job["step"] or ""), 40),
                job["attempts"],
                job["max_attempts"],
                started_by,
                when(job["created_at"]),
            )
        )
    return rows


class JobListView(LoginRequiredMixin, TemplateView):
    """Jobs the user may see, filterable by state and kind."""

    template_name = "portal/job_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        jobs = job_list_for_actor(Actor(user=self.request.user))
        state = self.request.GET.get("state", "")
        kind = self.request.GET.get("kind", "")
        if state in JobState.values:
            jobs = jobs.filter(state=state)
        if kind:
            jobs = jobs.filter(kind=kind)
        page = keyset_page(self.request, jobs.values(*JOB_COLUMNS), ("-created_at", "-id"), size=25)
        query = page.query
        context.update(
            page=page,
            rows=_job_rows(page.object_list),
            states=JobState.choices,
            kinds=sorted(job_kinds()),
            state=state,
            kind=kind,
            query=query,
            live=any(j["state"] in JobState.live() for j in page.object_list),
        )
        return context


class JobDetailView(LoginRequiredMixin, DetailView):
    """A job with live progress and log (the partial is polled with htmx while it runs)."""

    context_object_name = "job"

    def get_queryset(self) -> Any:
        return job_list_for_actor(Actor(user=self.request.user)).defer(None)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        actor = Actor(user=self.request.user)
        context["can_cancel"] = not job_cancel_refusal(job=self.object, actor=actor)
        return context

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request"):
            return ["portal/job_detail_partial.html"]
        return ["portal/job_detail.html"]


class JobCancelView(LoginRequiredMixin, View):
    """Cancel a job from its page."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor = Actor(user=request.user)
        job = get_object_or_404(job_list_for_actor(actor), pk=pk)
        refusal = job_cancel_refusal(job=job, actor=actor)
        if refusal:
            raise PermissionDenied(refusal)
        try:
            job_cancel(job=job, actor=actor)
            messages.success(request, gettext("Job #%(job)s cancelled.") % {"job": job.pk})
        except IllegalTransition as exc:
            messages.error(request, str(exc))
        return redirect("job-detail", pk=pk)


class RegistrySyncStartView(PlatformAdminRequiredMixin, View):
    """Start a registry sync (one at a time)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        job, created = job_create(
            kind="images.registry_sync",
            actor=Actor(user=request.user),
            idempotency_key="images.registry_sync",
        )
        if not created:
            messages.info(
                request,
                gettext("A registry sync is already running: job #%(job)s.") % {"job": job.pk},
            )
        return redirect("job-detail", pk=job.pk)


AUDIT_ORDER = ("-created_at", "-id")
AUDIT_COLUMNS = (
    "id",
    "created_at",
    "actor_repr",
    "action",
    "object_type_id",
    "object_repr",
    "before",
    "after",
)
AUDIT_ROW = (
    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{} {}</td>\n"
    '    <td><small class="audit-change">{}{}</small></td></tr>'
)


def _audit_rows(entries: list[dict[str, Any]]) -> list[SafeString]:
    """The audit table's lines, written here (`portal.rowtext`): 50 rows of five cells
    through the template engine were most of the page."""
    when = date_formatter("DATETIME_FORMAT")
    rows = []
    for entry in entries:
        type_id = entry["object_type_id"]
        before, after = entry["before"], entry["after"]
        rows.append(
            html(
                AUDIT_ROW,
                when(entry["created_at"]),
                entry["actor_repr"],
                entry["action"],
                ContentType.objects.get_for_id(type_id).model if type_id else "",
                entry["object_repr"],
                html('<span class="muted">{}</span> → ', before) if before else "",
                after or "",
            )
        )
    return rows


class AuditListView(PlatformAdminRequiredMixin, TemplateView):
    """The audit log (platform admins), filterable by action and actor."""

    template_name = "portal/auditentry_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        entries = audit_list()
        action = self.request.GET.get("action", "").strip()
        actor = self.request.GET.get("actor", "").strip()
        if action:
            entries = entries.filter(action__startswith=action)
        if actor:
            entries = entries.filter(actor_repr__icontains=actor)
        page = keyset_page(self.request, entries.values(*AUDIT_COLUMNS), AUDIT_ORDER, size=50)
        context.update(
            page=page,
            rows=_audit_rows(page.object_list),
            action=action,
            actor=actor,
            query=page.query,
        )
        return context


@method_decorator(never_cache, name="dispatch")
class TokenListView(LoginRequiredMixin, View):
    """The API tokens of the user's teams; create one (secret shown once) or revoke one.

    Tokens are created for the user's own teams only, platform admins included (a token acts
    for its creator, who must be a member); platform admins see and may revoke every team's.
    Revoking: the token's creator, a maintainer of its team or a platform admin; fetch tokens
    only a platform admin (`token_may_revoke`).

    `never_cache`: the page that shows a new secret must not be kept by a browser or proxy.
    """

    template_name = "portal/apitoken_list.html"

    def _own_teams(self, actor: Actor) -> Any:
        return Team.objects.filter(pk__in=actor.team_ids)

    def _visible_teams(self, actor: Actor) -> Any:
        if actor.is_platform_admin:
            return Team.objects.all()
        return self._own_teams(actor)

    def _render(self, request: HttpRequest, form: TokenCreateForm, **extra: Any) -> HttpResponse:
        actor = Actor(user=request.user)
        tokens = list(
            ApiToken.objects.filter(team__in=self._visible_teams(actor)).select_related(
                "team", "created_by"
            )
        )
        revocable = {t.pk for t in tokens if token_may_revoke(token=t, actor=actor)}
        return render(
            request,
            self.template_name,
            {"form": form, "tokens": tokens, "revocable": revocable, **extra},
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = Actor(user=request.user)
        return self._render(request, TokenCreateForm(teams=self._own_teams(actor)))

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = Actor(user=request.user)
        if "revoke" in request.POST:
            pk = id_or_none(request.POST["revoke"])
            if pk is None:
                messages.error(
                    request, gettext("Choose a token to revoke: `revoke` must be its id.")
                )
                form = TokenCreateForm(teams=self._own_teams(actor))
                response = self._render(request, form)
                response.status_code = 400
                return response
            token = get_object_or_404(
                ApiToken.objects.filter(team__in=self._visible_teams(actor)).select_related("team"),
                pk=pk,
            )
            try:
                token_revoke(token=token, actor=actor)
                messages.success(request, gettext("Token %(name)s revoked.") % {"name": token.name})
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect("token-list")
        form = TokenCreateForm(request.POST, teams=self._own_teams(actor))
        if not form.is_valid():
            return self._render(request, form)
        try:
            token, secret = token_create(
                team=form.cleaned_data["team"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_days=form.cleaned_data["expires_days"],
                actor=actor,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self._render(request, form)
        return self._render(
            request, TokenCreateForm(teams=self._own_teams(actor)), new_token=token, secret=secret
        )


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 in the portal's look: the view's message, the role it needs and who holds it.

    Messages naming a team (from `require_team_role`) already list that team's holders; the
    page adds the platform admins, who review, publish and manage teams.
    """
    context = {
        "exception": str(exception) or "",
        "platform_admins": role_holders(minimum="platform-admin"),
    }
    return render(request, "403.html", context, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 in the portal's look, keeping the view's message (a JSON 404 under /api/)."""
    message = str(exception) if isinstance(exception, Http404) else ""
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return render(
        request, "404.html", {"exception": message, "request_path": request.path}, status=404
    )


@csrf_exempt  # a token client's POST to an unknown route gets the JSON 404, not the CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Unknown `/api/v1/…` routes answer in the API's error shape, not an HTML page; a route
    that exists with a trailing slash is redirected there (APPEND_SLASH, which this catch-all
    would otherwise pre-empt)."""
    if settings.APPEND_SLASH and not request.path.endswith("/"):
        slashed = request.path + "/"
        try:
            match = resolve(slashed, getattr(request, "urlconf", None))
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(slashed + (f"?{query}" if query else ""))
    return JsonResponse(
        {
            "detail": _("No API route %(path)s; the routes are listed at /api/docs/.")
            % {"path": request.path},
            "code": "not_found",
        },
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """500 without the request's context (it may be what failed): a static page."""
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
