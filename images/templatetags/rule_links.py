"""`{{ finding.rule|rule_link }}`: a finding's rule id as a link to its reference page."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..rule_reference import external_help_uri, rule_doc

register = template.Library()


@register.filter
def rule_url(rule: object) -> str:
    """The reference page of a rule: the portal's own (BIP…), hadolint's or ShellCheck's."""
    rule = str(rule)
    external = external_help_uri(rule)
    if external is not None:
        return external
    if rule_doc(rule) is not None:
        return reverse("images:rule-detail", args=[rule])
    return ""


@register.filter
def rule_link(rule: object) -> SafeString:
    """`<a href="…"><code>BIP002</code></a>` (the bare id when the rule has no page)."""
    url = rule_url(rule)
    doc = rule_doc(str(rule))
    if not url:
        return format_html("<code>{}</code>", rule)
    return format_html(
        '<a href="{}" class="rule-link" title="{}"><code>{}</code></a>',
        url,
        doc.title if doc else "",
        rule,
    )
