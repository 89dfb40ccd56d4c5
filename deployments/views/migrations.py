"""The OS-migration wizard: pick a source image, pick its replacement, preview the verdicts.

Step 1 lists the runtime base images with the number of deployments on their versions;
step 2 offers the approved runtime versions with the catalog's `replacement` pre-selected,
and optional team/environment filters. "Preview" calls `migration_plan_create` (the plan
engine, imported when called) and shows the dry run on the plan's page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy, pgettext
from django.views import View

from images.choices import ImageKind
from images.models import BaseImage, ImageVersion
from portal.models import Team

from ..models import Environment
from ._common import _error_text
from .plans import REFUSALS, _admin, approved_runtime_versions, plan_service


def migration_sources() -> QuerySet[BaseImage]:
    """Runtime base images with their count of deployments (most used first), in one query."""
    return (
        BaseImage.objects.filter(kind=ImageKind.RUNTIME)
        .select_related("replacement")
        .annotate(deployment_count=Count("versions__deployments"))
        .order_by("-deployment_count", "name")
    )


def replacement_version(source: BaseImage) -> ImageVersion | None:
    """The newest approved version of the catalog's replacement of `source`."""
    if source.replacement_id is None:
        return None
    return approved_runtime_versions().filter(base_image_id=source.replacement_id).first()


class MigrationForm(forms.Form):
    """Step 2: the target version and the optional narrowing of the source's deployments."""

    source = forms.ModelChoiceField(
        label=gettext_lazy("Source"),
        queryset=BaseImage.objects.filter(kind=ImageKind.RUNTIME),
        widget=forms.HiddenInput,
    )
    target = forms.ModelChoiceField(
        queryset=approved_runtime_versions(),
        label=gettext_lazy("Replacement (an approved runtime version)"),
    )
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"),
        queryset=Team.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("Every team"),
        to_field_name="name",
    )
    environment = forms.ModelChoiceField(
        label=gettext_lazy("Environment"),
        queryset=Environment.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("Every environment"),
        to_field_name="name",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source, target = data.get("source"), data.get("target")
        if source is not None and target is not None and target.base_image_id == source.pk:
            raise ValidationError(
                gettext(
                    "%(target)s is a version of %(source)s itself: a move within one image is a "
                    "rebase, not a migration."
                )
                % {"target": target, "source": source.name}
            )
        return data


class MigrationCreateView(LoginRequiredMixin, View):
    """The wizard (platform admins): source image → replacement → dry-run plan."""

    template_name = "deployments/migration_new.html"

    def _render(
        self,
        request: HttpRequest,
        source: BaseImage | None,
        form: MigrationForm | None,
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "sources": list(migration_sources()),
            "source": source,
            "form": form,
            "suggested": replacement_version(source) if source is not None else None,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        _admin(request, pgettext("platform admins …", "plan OS migrations"))
        source_id = request.GET.get("source", "")
        source = None
        if source_id.isdigit():
            source = migration_sources().filter(pk=int(source_id)).first()
        form = None
        if source is not None:
            suggested = replacement_version(source)
            form = MigrationForm(
                initial={"source": source.pk, "target": suggested.pk if suggested else None}
            )
        return self._render(request, source, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = _admin(request, pgettext("platform admins …", "plan OS migrations"))
        form = MigrationForm(request.POST)
        source = None
        if form.is_valid():
            data = form.cleaned_data
            source = data["source"]
            create = plan_service("migration_plan_create")
            try:
                plan = create(
                    actor=actor,
                    target_version_id=data["target"].pk,
                    team=data["team"].name if data["team"] else None,
                    environment=data["environment"].name if data["environment"] else None,
                    base_image_id=source.pk,
                )
            except REFUSALS as exc:
                form.add_error(None, _error_text(exc))
            else:
                messages.success(
                    request,
                    gettext(
                        "Dry run ready: each deployment's verdict against the target is below; "
                        "apply releases only the compatible ones."
                    ),
                )
                return redirect("deployments:plan-detail", pk=plan.pk)
        elif "source" not in form.errors:
            source = form.cleaned_data.get("source")
        if source is not None:
            source = migration_sources().filter(pk=source.pk).first()
        return self._render(request, source, form, status=400)
