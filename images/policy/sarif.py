"""SARIF 2.1.0 output for code-scanning tools (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

from typing import Any

from images.policy.config import PolicyConfig, load_policy
from images.policy.engine import CheckResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "base-image-portal"
_LEVELS = {"fail": "error", "warn": "warning", "info": "note"}


def _rule_descriptor(rule: str, policy: PolicyConfig, help_base: str | None) -> dict[str, Any]:
    info = policy.rules.get(rule)
    if info is not None:
        descriptor: dict[str, Any] = {
            "id": rule,
            "name": info.title,
            "shortDescription": {"text": info.title},
            "fullDescription": {"text": info.help},
            "help": {"text": info.help},
            "defaultConfiguration": {"level": _LEVELS[policy.severity(rule)]},
        }
        if help_base:
            descriptor["helpUri"] = f"{help_base}{rule}/"
        return descriptor
    if rule.startswith("SC"):
        uri = f"https://www.shellcheck.net/wiki/{rule}"
        text = f"ShellCheck {rule} (reported by hadolint)"
    else:
        uri = f"https://github.com/hadolint/hadolint/wiki/{rule}"
        text = f"hadolint {rule}"
    return {
        "id": rule,
        "shortDescription": {"text": text},
        "helpUri": uri,
    }


def to_sarif(
    result: CheckResult,
    *,
    filename: str,
    policy: PolicyConfig | None = None,
    help_base: str | None = None,
) -> dict[str, Any]:
    """Render a CheckResult as a SARIF 2.1.0 log with one run.

    Args:
        result: the check result.
        filename: the artifact URI the results point at (e.g. `Dockerfile`).
        policy: for rule titles and help; the defaults when None.
        help_base: the absolute URL of the portal's rule reference (`https://…/rules/`); each
            portal rule's `helpUri` is `<help_base><rule>/` (none when None).
    """
    policy = policy or load_policy(None)
    rule_ids: list[str] = []
    for finding in result.findings:
        if finding.rule not in rule_ids:
            rule_ids.append(finding.rule)
    index = {rule: number for number, rule in enumerate(rule_ids)}
    results = [
        {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _LEVELS.get(finding.severity, "note"),
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": filename},
                        "region": {"startLine": max(finding.line, 1)},
                    }
                }
            ],
        }
        for finding in result.findings
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "informationUri": "https://github.com/hadolint/hadolint",
                        "rules": [_rule_descriptor(rule, policy, help_base) for rule in rule_ids],
                    }
                },
                "artifacts": [{"location": {"uri": filename}}],
                "results": results,
                "properties": {"verdict": result.verdict},
            }
        ],
    }
