"""axe-core (npm `axe-core`, pinned in package.json) run in the page under test.

The script is evaluated through Playwright (the DevTools protocol), not added as a <script>:
the portal's Content-Security-Policy allows no inline script, and the check must not need
the policy loosened. Use the `axe` fixture (tests/browser/conftest.py) on every main page:

    def test_my_page(page, axe):
        page.goto("/my-page/")
        axe(page)                      # fails listing each violation, its rule and nodes
        axe(page, exclude=["#chart"])  # leave out what axe cannot judge (a canvas chart)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, the level the portal holds itself to; best-practice rules stay off.
WCAG_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


@cache
def _source() -> str:
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: run `npm ci` (package.json pins axe-core)")
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(
    page: Any, *, tags: tuple[str, ...] = WCAG_AA, exclude: list[str] | None = None
) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (inject once per document)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    context: dict[str, Any] = {"include": [["html"]]}
    if exclude:
        context["exclude"] = [[selector] for selector in exclude]
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    result = page.evaluate(
        "([context, options]) => window.axe.run(context, options)", [context, options]
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def format_violations(violations: list[dict[str, Any]]) -> str:
    """One line per violation and up to five offending nodes each, for the assertion message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {v['helpUrl']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary']!s:.300}")
    return "\n".join(lines)
