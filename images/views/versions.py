"""UI views of image versions: the version page (scan state, SBOM, findings) and "Scan now".

Each view parses input and calls the same selector or service as the API.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views import View

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition
from portal.keyset import keyset_page

from ..choices import FixState, ScanState, Severity
from ..models import FINDING_ORDER, ImageVersion
from ..scan_selectors import (
    FilterError,
    FindingFilters,
    findings_waivers,
    image_version_findings,
    image_version_for_findings,
)

FINDINGS_PAGE_SIZES = (10, 25, 50, 100)
FINDINGS_PAGE_SIZE = 25


def _page_size(request: HttpRequest) -> int:
    """`?page_size=` when it is one of FINDINGS_PAGE_SIZES, else FINDINGS_PAGE_SIZE."""
    try:
        size = int(request.GET.get("page_size", FINDINGS_PAGE_SIZE))
    except ValueError:
        return FINDINGS_PAGE_SIZE
    return size if size in FINDINGS_PAGE_SIZES else FINDINGS_PAGE_SIZE


def may_scan(actor: Actor, version: ImageVersion) -> bool:
    """Image maintainers (maintainers of the owner team) and platform admins may scan."""
    if actor.is_platform_admin:
        return True
    role = actor.role_in(version.base_image.owner_team)
    return role is not None and role_at_least(role, Role.MAINTAINER)


def _version(pk: int) -> ImageVersion:
    try:
        return image_version_for_findings(pk)
    except ImageVersion.DoesNotExist as exc:
        raise Http404(gettext("No image version #%(pk)s.") % {"pk": pk}) from exc


class ImageVersionDetailView(LoginRequiredMixin, View):
    """One image version: digest, scan state, SBOM downloads and its findings (filtered,
    paginated, worst first) with their waiver state."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = _version(pk)
        actor = Actor(user=request.user)
        errors: dict[str, str] = {}
        try:
            filters = FindingFilters.parse(request.GET)
        except FilterError as exc:
            errors[exc.field] = exc.message
            filters = FindingFilters()
        listing = image_version_findings(version=version, filters=filters)
        page = keyset_page(request, listing.findings, FINDING_ORDER, size=_page_size(request))
        shown = page.object_list
        waivers = findings_waivers(version=version, listing=listing, page=shown)
        rows = [
            {
                "finding": f,
                "waiver": waivers.get(f.pk),
                "waiver_url": reverse("images:waiver-create")
                + "?"
                + urlencode(
                    {
                        "advisory": f.advisory.osv_id,
                        "image_version": version.pk,
                        "package": f.package.name,
                    }
                ),
            }
            for f in shown
        ]
        api = reverse("api:image-version-detail", args=[version.pk])
        return render(
            request,
            "images/imageversion_detail.html",
            {
                "version": version,
                "image": version.base_image,
                "page": page,
                "rows": rows,
                "query": page.query,
                "filters": filters,
                "errors": errors,
                "severities": [s for s in Severity if s != Severity.NONE],
                "fix_states": FixState.choices,
                "summary": version.scan_summary or {},
                "can_scan": may_scan(actor, version),
                "scan_busy": version.scan_state in (ScanState.QUEUED, ScanState.SCANNING),
                "sbom_links": [
                    ("CycloneDX 1.6 JSON", f"{api}sbom/?format=cyclonedx-json"),
                    ("syft JSON", f"{api}sbom/?format=syft-json"),
                ]
                if version.sbom_id
                else [],
            },
        )


class ImageVersionScanView(LoginRequiredMixin, View):
    """ "Scan now": starts the scan job (the scanner's service) and shows where it runs."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = _version(pk)
        actor = Actor(user=request.user)
        if not may_scan(actor, version):
            raise PermissionDenied(
                gettext(
                    "Only maintainers of team %(team)s and platform admins may scan this image."
                )
                % {"team": version.base_image.owner_team.name}
            )
        # The scanner's service, imported here so this page works before it is merged.
        from ..services.scans import image_version_scan_start  # type: ignore[import-not-found,unused-ignore]

        try:
            job = image_version_scan_start(version_id=version.pk, actor=actor)
        except (ValidationError, IllegalTransition) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            return redirect("images:image-version-detail", pk=version.pk)
        messages.success(request, gettext("Scan queued as job #%(job)s.") % {"job": job.pk})
        return redirect("images:image-version-detail", pk=version.pk)
