"""The CVE page: search advisories by id, alias or text; one advisory's blast radius.

The search is the images app's selector, the blast radius this app's (it knows the
deployments); a service team's member sees its own services' part.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views import View

from images.choices import Severity
from images.scan_selectors import (
    AdvisoryFilters,
    FilterError,
    advisory_detail,
    advisory_get,
    advisory_search,
)

from ..selectors.impact import UnknownAdvisory, advisory_impact
from ._common import _page, _reader

MAX_REF_LENGTH = 100


class AdvisorySearchView(LoginRequiredMixin, View):
    """`advisories/?q=CVE-…`: the matching advisories; one exact match shows its blast
    radius at once. `advisories/<id>/`: that advisory (or alias) and its blast radius."""

    def get(self, request: HttpRequest, ref: str | None = None) -> HttpResponse:
        actor = _reader(request)
        context: dict[str, Any] = {
            "severities": [s for s in Severity if s != Severity.NONE],
            "errors": {},
            "impact": None,
            "ref": ref or "",
        }
        if ref is not None:
            if len(ref) > MAX_REF_LENGTH:
                raise Http404(gettext_lazy("No advisory has an id that long."))
            try:
                context["impact"] = advisory_impact(advisory_ref=ref, actor=actor)
            except UnknownAdvisory as exc:
                raise Http404(str(exc)) from exc
            context["q"] = ref
            context["record"] = advisory_get(context["impact"].advisory.osv_id, advisory_detail())
            return render(request, "deployments/advisory_search.html", context)
        try:
            filters = AdvisoryFilters.parse(request.GET)
        except FilterError as exc:
            context["errors"][exc.field] = exc.message
            filters = AdvisoryFilters()
        context["filters"] = filters
        context["q"] = filters.q
        searched = bool(filters.q or filters.severities or filters.ecosystem or filters.package)
        context["searched"] = searched
        if searched:
            results = advisory_search(filters)
            context.update(_page(request, results))
            shown = list(context["page"].object_list)
            if context["page"].paginator.count == 1 or (
                shown and filters.q and getattr(shown[0], "exact", 2) < 2
            ):
                # One advisory (or an exact id/alias hit first): show its radius right away.
                context["impact"] = advisory_impact(advisory_ref=shown[0].osv_id, actor=actor)
        return render(request, "deployments/advisory_search.html", context)
