"""The rule reference: one page per portal rule (BIP…, BUILD…), in the reader's language.

Each rule says what it checks, why (quoting the platform team's standard, which is written in
Chinese and quoted as written), how to fix it, and an example. The pages are linked from every
finding in the UI, from the SARIF `helpUri` and from `tools/portal-check`. The text is English
marked for translation; `locale/zh_Hans/` holds the Chinese.

Modules: `base` (`RuleDoc`, the standard's passages), `dockerfile` (`RULES`: the Dockerfile
check's rules, one per rule of the default policy) and `build` (`BUILD_RULES`: the rules an
image request's recipe is checked by when it is submitted).
"""

from __future__ import annotations

from .base import HADOLINT_WIKI, QUOTES, SHELLCHECK_WIKI, STANDARD_TITLE, RuleDoc
from .build import BUILD_RULES
from .dockerfile import RULES

__all__ = [
    "BUILD_RULES",
    "HADOLINT_WIKI",
    "QUOTES",
    "RULES",
    "SHELLCHECK_WIKI",
    "STANDARD_TITLE",
    "RuleDoc",
    "external_help_uri",
    "rule_doc",
]

_BY_ID = {doc.rule: doc for doc in (*RULES, *BUILD_RULES)}


def rule_doc(rule: str) -> RuleDoc | None:
    """The reference of a portal rule, or None (hadolint/ShellCheck rules and unknown ids)."""
    return _BY_ID.get(rule)


def external_help_uri(rule: str) -> str | None:
    """hadolint's or ShellCheck's own page for their rules (DL…, SC…), else None."""
    if rule.startswith("DL"):
        return HADOLINT_WIKI + rule
    if rule.startswith("SC"):
        return SHELLCHECK_WIKI + rule
    return None
