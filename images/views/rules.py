"""The rule reference pages: the index of portal rules and one page per rule (public).

No login: the pages only explain the standard, and CI logs (SARIF `helpUri`, portal-check)
link to them from wherever a finding is read.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.generic import TemplateView

from ..policy import load_policy
from ..rule_reference import (
    BUILD_RULES,
    QUOTES,
    RULES,
    STANDARD_TITLE,
    external_help_uri,
    rule_doc,
)


class RuleReferenceView(TemplateView):
    """Every portal rule with its severity and title: the Dockerfile check's, then an image
    request's."""

    template_name = "images/rule_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        policy = load_policy(None)
        context["rules"] = [(doc, policy.severity(doc.rule)) for doc in RULES]
        context["build_rules"] = [(doc, doc.severity) for doc in BUILD_RULES]
        return context


class RuleDetailView(TemplateView):
    """One rule: what it checks, why (the standard's words), how to fix it, an example."""

    template_name = "images/rule_detail.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        rule = str(kwargs["rule"]).upper()
        external = external_help_uri(rule)
        if external is not None:
            return redirect(external)
        if rule_doc(rule) is None:
            raise Http404(gettext("No portal rule %(rule)s.") % {"rule": rule})
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        doc = rule_doc(str(kwargs["rule"]).upper())
        context.update(
            doc=doc,
            severity=(doc.severity or load_policy(None).severity(doc.rule)) if doc else "",
            standard_title=STANDARD_TITLE,
            quotes=QUOTES,
        )
        return context
