"""UI views of the deployments app: services, versions, upload, deployments, releases, diff."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition
from portal.models import Team

from .filtersets import BinaryVersionFilterSet, ServiceFilterSet
from .forms import (
    BinaryUploadForm,
    DeploymentCreateForm,
    EnvironmentCreateForm,
    ReleaseCreateForm,
    ServiceCreateForm,
    approved_runtime_versions,
)
from .models import BinaryVersion, Deployment, Environment, Release
from .selectors import (
    BadServiceName,
    binary_version_list,
    deployment_list_for_actor,
    environment_list,
    release_diff,
    release_list,
    release_list_for_actor,
    service_get,
    service_list_for_actor,
    team_readable,
)
from .services import (
    binary_version_artifact_push,
    binary_version_upload,
    binary_version_yank,
    deployment_create,
    environment_create,
    environment_fetch_token_create,
    release_create,
    release_rollback,
    service_create,
)
from .uploads import FILE_FIELD, check_content_length, install_upload_handler

PAGE_SIZES = (10, 25, 50, 100)


def _page(request: HttpRequest, items: QuerySet[Any]) -> dict[str, Any]:
    """A page of `items` and the query string that keeps the filters across pages."""
    try:
        size = int(request.GET.get("page_size", 25))
    except ValueError:
        size = 25
    size = size if size in PAGE_SIZES else 25
    page = Paginator(items, size).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {"page": page, "query": query.urlencode(), "page_size": size, "page_sizes": PAGE_SIZES}


def _service_or_404(name: str, actor: Actor | None = None) -> Any:
    """The service `name`; with `actor`, 404 as well when the actor may not read it."""
    try:
        return service_get(name, actor=actor)
    except BadServiceName as exc:
        raise Http404(str(exc)) from exc


def _reader(request: HttpRequest) -> Actor:
    """The user as an Actor, with their memberships loaded once for the whole request.

    Read views scope every list by the user's teams (`team_readable`) and ask for roles;
    with the memberships prefetched neither costs a further query.
    """
    user = request.user
    if not isinstance(user, AnonymousUser):
        prefetch_related_objects([user], "memberships")
    return Actor(user=user)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, APIException):
        return str(exc.detail)
    return str(exc)


def _show_errors(form: forms.Form, exc: ValidationError | APIException) -> int:
    """Put a service's refusal on the form (per field when it names one); return its status."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            if field in form.fields and field not in form.errors:
                form.add_error(field, errors)
            else:
                form.add_error(None, [f"{field}: {e}" for e in errors])
    else:
        form.add_error(None, _error_text(exc))
    return getattr(exc, "status_code", 400)


def _teams_at_least(actor: Actor, minimum: str) -> list[Team]:
    """The teams in which the actor holds `minimum` or above."""
    memberships = actor.user.memberships.select_related("team").order_by("team__name")
    return [m.team for m in memberships if role_at_least(m.role, minimum)]


class ServiceListView(LoginRequiredMixin, TemplateView):
    """Every service with its team, version count and last upload."""

    template_name = "deployments/service_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        readable = service_list_for_actor(_reader(self.request))
        filterset = ServiceFilterSet(self.request.GET or None, queryset=readable)
        services = filterset.qs if filterset.is_bound and filterset.is_valid() else readable
        context.update(
            filterset=filterset,
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            **_page(self.request, services),
        )
        return context


class ServiceCreateView(LoginRequiredMixin, View):
    """Register a service of one of the user's teams (maintainers and above)."""

    template_name = "deployments/service_form.html"

    def _teams(self, request: HttpRequest) -> list[Team]:
        teams = _teams_at_least(Actor(user=request.user), Role.MAINTAINER)
        if not teams:
            raise PermissionDenied(
                "Only team maintainers register services; ask a maintainer of your team."
            )
        return teams

    def get(self, request: HttpRequest) -> HttpResponse:
        form = ServiceCreateForm(teams=self._teams(request))
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ServiceCreateForm(request.POST, teams=self._teams(request))
        status = 400
        if form.is_valid():
            try:
                service = service_create(actor=Actor(user=request.user), **form.cleaned_data)
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(request, f"Service {service.name} registered.")
                return redirect("deployments:service-detail", name=service.name)
        return render(request, self.template_name, {"form": form}, status=status)


class ServiceDetailView(LoginRequiredMixin, TemplateView):
    """A service: its binary versions (filterable, paginated) and its deployments."""

    template_name = "deployments/service_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        actor = _reader(self.request)
        service = _service_or_404(kwargs["name"], actor)
        versions = binary_version_list(service)
        filterset = BinaryVersionFilterSet(self.request.GET or None, queryset=versions)
        if filterset.is_bound and filterset.is_valid():
            versions = filterset.qs
        role = actor.role_in(service.team)
        context.update(
            service=service,
            filterset=filterset,
            errors=filterset.errors if filterset.is_bound else {},
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            deployments=deployment_list_for_actor(actor).filter(service=service),
            can_upload=role is not None and role_at_least(role, Role.DEVELOPER),
            can_deploy=role is not None and role_at_least(role, Role.DEVELOPER),
            **_page(self.request, versions),
        )
        return context


@csrf_exempt
@login_required
def binary_upload_view(request: HttpRequest, name: str) -> HttpResponse:
    """The upload form. The body is parsed by the streaming handler, then CSRF is checked."""
    if request.method == "POST":
        handler = install_upload_handler(request)  # before anything reads request.POST
        try:
            # Parse the body here, so a refused body (413, malformed) is answered with the form
            # and its message; csrf_protect below would otherwise hit it first, unhandled.
            check_content_length(request.META)
            request.POST  # noqa: B018 - reading it parses the body
        except (ValidationError, APIException) as exc:
            return render(
                request,
                "deployments/binaryversion_upload.html",
                {
                    "service": _service_or_404(name),
                    "form": BinaryUploadForm(),
                    "body_error": _error_text(exc),
                },
                status=getattr(exc, "status_code", 400),
            )
        return _binary_upload(request, name, handler)
    return _binary_upload(request, name, None)


@csrf_protect
def _binary_upload(request: HttpRequest, name: str, handler: Any) -> HttpResponse:
    service = _service_or_404(name)
    actor = Actor(user=request.user)
    context: dict[str, Any] = {"service": service}
    if request.method != "POST":
        context["form"] = BinaryUploadForm()
        return render(request, "deployments/binaryversion_upload.html", context)
    upload = None
    form = BinaryUploadForm()
    try:
        check_content_length(request.META)
        form = BinaryUploadForm(request.POST, request.FILES)
        upload = request.FILES.get(FILE_FIELD)
        if upload is None and handler is not None and handler.interrupted:
            raise ValidationError("The upload ended before the file was complete.")
        binary, created = binary_version_upload(
            actor=actor,
            service=service,
            upload=upload,
            version=request.POST.get("version", ""),
            arch=request.POST.get("arch", ""),
            sha256=request.POST.get("sha256", ""),
            commit=request.POST.get("commit", ""),
            build_url=request.POST.get("build_url", ""),
        )
    except (ValidationError, APIException) as exc:
        status = getattr(exc, "status_code", 400)
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, _error_text(exc))
        context["form"] = form
        return render(request, "deployments/binaryversion_upload.html", context, status=status)
    finally:
        if upload is not None:
            upload.close()
    verb = "uploaded" if created else "was already there with the same sha256"
    messages.success(request, f"{binary.service.name} {binary.version} ({binary.arch}) {verb}.")
    return redirect("deployments:service-detail", name=service.name)


def _binary_or_404(request: HttpRequest, pk: int) -> BinaryVersion:
    """The binary version `pk` of a service the user may read (another team's: 404)."""
    readable = team_readable(_reader(request), "service__team")
    binaries = BinaryVersion.objects.select_related("service__team").filter(readable)
    return get_object_or_404(binaries, pk=pk)


class BinaryYankView(LoginRequiredMixin, View):
    """Yank a binary version from the service page."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        binary = _binary_or_404(request, pk)
        try:
            binary_version_yank(actor=Actor(user=request.user), binary_version=binary)
            messages.success(request, f"{binary} yanked: it can no longer go into new releases.")
        except (IllegalTransition, APIException) as exc:
            messages.error(request, _error_text(exc))
        return redirect("deployments:service-detail", name=binary.service.name)


class BinaryArtifactView(LoginRequiredMixin, View):
    """Push a binary version as an OCI artifact (image volumes); then follow the job."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        binary = _binary_or_404(request, pk)
        try:
            job, created = binary_version_artifact_push(
                actor=Actor(user=request.user), binary_version=binary
            )
        except APIException as exc:
            if getattr(exc, "status_code", 0) == 403:
                raise PermissionDenied(_error_text(exc)) from exc
            messages.error(request, _error_text(exc))
            return redirect("deployments:service-detail", name=binary.service.name)
        messages.success(
            request,
            f"Pushing {binary} as an OCI artifact (job #{job.pk})"
            + ("." if created else ": a push was already under way."),
        )
        return redirect("job-detail", job.pk)


class EnvironmentListView(LoginRequiredMixin, TemplateView):
    """Environments with their Kubernetes version and delivery strategy."""

    template_name = "deployments/environment_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["environments"] = environment_list()
        context["can_create"] = Actor(user=self.request.user).is_platform_admin
        return context


class EnvironmentCreateView(LoginRequiredMixin, View):
    """Add an environment (platform admins)."""

    template_name = "deployments/environment_form.html"

    def _check(self, request: HttpRequest) -> Actor:
        actor = Actor(user=request.user)
        if not actor.is_platform_admin:
            raise PermissionDenied("Only platform admins create environments.")
        return actor

    def get(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        return render(request, self.template_name, {"form": EnvironmentCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = self._check(request)
        form = EnvironmentCreateForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                environment = environment_create(actor=actor, **form.cleaned_data)
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Environment {environment.name} created. Create its fetch token next.",
                )
                return redirect("deployments:environment-detail", name=environment.name)
        return render(request, self.template_name, {"form": form}, status=status)


class EnvironmentDetailView(LoginRequiredMixin, View):
    """An environment: its deployments, sync DaemonSet and fetch-token instructions.

    POST (platform admins) creates a new fetch token and shows its secret once, inside the
    `kubectl create secret` command, and says which previous token the rotation revoked.
    """

    template_name = "deployments/environment_detail.html"

    def _render(
        self, request: HttpRequest, name: str, extra: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        environment = get_object_or_404(environment_list(), name=name)
        actor = _reader(request)
        context = {
            "environment": environment,
            "deployments": deployment_list_for_actor(actor).filter(environment=environment),
            "is_platform_admin": actor.is_platform_admin,
            **extra,
        }
        response = render(request, self.template_name, context, status=status)
        if "fetch" in extra:
            response["Cache-Control"] = "no-store"
        return response

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        return self._render(request, name, {})

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        environment = get_object_or_404(Environment, name=name)
        try:
            fetch = environment_fetch_token_create(
                environment=environment, actor=Actor(user=request.user)
            )
        except (ValidationError, APIException) as exc:
            status = getattr(exc, "status_code", 400)
            return self._render(request, name, {"fetch_error": _error_text(exc)}, status=status)
        return self._render(request, name, {"fetch": fetch})


class DeploymentCreateView(LoginRequiredMixin, View):
    """Put a service into an environment (developers of the service's team)."""

    template_name = "deployments/deployment_form.html"

    def _service(self, request: HttpRequest, name: str) -> Any:
        service = _service_or_404(name)
        role = Actor(user=request.user).role_in(service.team)
        if role is None or not role_at_least(role, Role.DEVELOPER):
            raise PermissionDenied(
                f"Only developers of team {service.team.name} (or above) deploy {service.name}."
            )
        return service

    def _render(
        self, request: HttpRequest, service: Any, form: DeploymentCreateForm, status: int = 200
    ) -> HttpResponse:
        context = {
            "service": service,
            "form": form,
            "no_environments": not Environment.objects.exists(),
            "no_runtimes": not approved_runtime_versions().exists(),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        service = self._service(request, name)
        return self._render(request, service, DeploymentCreateForm(service=service))

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        service = self._service(request, name)
        form = DeploymentCreateForm(request.POST, service=service)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                deployment = deployment_create(
                    actor=Actor(user=request.user),
                    service=service,
                    environment=data["environment"],
                    runtime_version=data["runtime_version"],
                    binary_version=data["binary_version"],
                    mode=data["mode"],
                    args=data["args"],
                    env=data["env"],
                    ports=data["ports"],
                    resources=form.resources(),
                    replicas=data["replicas"],
                )
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"{service.name} is deployed in {deployment.environment.name}: "
                    "create its first release.",
                )
                return redirect("deployments:deployment-detail", pk=deployment.pk)
        return self._render(request, service, form, status=status)


class DeploymentDetailView(LoginRequiredMixin, View):
    """A deployment: current tuple, release history, new release, rollback, diff."""

    template_name = "deployments/deployment_detail.html"

    def _deployment(self, request: HttpRequest, pk: int) -> Deployment:
        """The deployment `pk`: 404 for one of another team's services, as for none."""
        return get_object_or_404(deployment_list_for_actor(_reader(request)), pk=pk)

    def _render(
        self,
        request: HttpRequest,
        deployment: Deployment,
        form: ReleaseCreateForm,
        status: int = 200,
    ) -> HttpResponse:
        releases = list(release_list().filter(deployment=deployment))
        role = Actor(user=request.user).role_in(deployment.service.team)
        context = {
            "deployment": deployment,
            "releases": releases,
            "form": form,
            "can_release": role is not None and role_at_least(role, Role.DEVELOPER),
            "has_binaries": deployment.service.binary_versions.filter(state="active").exists(),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        deployment = self._deployment(request, pk)
        return self._render(request, deployment, ReleaseCreateForm(deployment=deployment))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        deployment = self._deployment(request, pk)
        form = ReleaseCreateForm(request.POST, deployment=deployment)
        if not form.is_valid():
            return self._render(request, deployment, form, status=400)
        try:
            release = release_create(
                actor=Actor(user=request.user),
                deployment=deployment,
                binary_version=form.cleaned_data["binary_version"],
                runtime_version=form.cleaned_data["runtime_version"],
            )
        except (ValidationError, APIException) as exc:
            status = _show_errors(form, exc)
            return self._render(request, deployment, form, status=status)
        messages.success(request, f"Release #{release.number} created and validated.")
        return redirect("deployments:release-detail", pk=release.pk)


class ReleaseDetailView(LoginRequiredMixin, TemplateView):
    """One release: its tuple, validation result, manifest and Dockerfile."""

    template_name = "deployments/release_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        releases = release_list_for_actor(_reader(self.request)).defer(None)
        context["release"] = get_object_or_404(releases, pk=kwargs["pk"])
        return context


class ReleaseRollbackView(LoginRequiredMixin, View):
    """Roll back: a new release with an older release's binary and runtime versions."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        readable = team_readable(_reader(request), "deployment__service__team")
        releases = Release.objects.select_related("deployment").filter(readable)
        old = get_object_or_404(releases, pk=pk)
        try:
            release = release_rollback(actor=Actor(user=request.user), release=old)
        except (ValidationError, APIException) as exc:
            messages.error(request, f"Rollback to #{old.number} refused: {_error_text(exc)}")
            return redirect("deployments:deployment-detail", pk=old.deployment_id)
        messages.success(request, f"Release #{release.number} rolls back to #{old.number}.")
        return redirect("deployments:release-detail", pk=release.pk)


class ReleaseDiffView(LoginRequiredMixin, TemplateView):
    """A unified diff between two releases of a deployment (?a=<number>&b=<number>)."""

    template_name = "deployments/release_diff.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        deployments = deployment_list_for_actor(_reader(self.request))
        deployment = get_object_or_404(deployments, pk=kwargs["pk"])
        releases = {r.number: r for r in Release.objects.filter(deployment=deployment)}
        error = ""
        diff = ""
        try:
            a, b = int(self.request.GET.get("a", "")), int(self.request.GET.get("b", ""))
        except ValueError:
            a = b = 0
            error = "Choose two releases to compare."
        if not error:
            if a not in releases or b not in releases:
                error = f"{deployment} has no release #{a if a not in releases else b}."
            else:
                diff = release_diff(releases[a], releases[b]) or ""
        context.update(
            deployment=deployment,
            numbers=sorted(releases, reverse=True),
            a=a,
            b=b,
            diff_lines=diff.splitlines(),
            error=error,
            identical=not error and not diff,
        )
        return context
