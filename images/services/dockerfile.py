"""The Dockerfile check against the catalog and the standard (the API endpoint and the UI page).

The check reads the policy file and the cached catalog; a service's context (its language and
policy exceptions) comes from a resolver the deployments app registers, one layer above.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from ..catalog_cache import policy_catalog
from ..policy import (
    CheckResult,
    DockerfileInputError,
    Finding,
    PolicyConfig,
    PolicyError,
    ServiceContext,
    check_dockerfile,
    load_policy,
    to_sarif,
)
from ..policy.engine import decode_dockerfile
from ..policy.rules import PURPOSES
from ..texts import Text

POLICY_FALLBACK_RULE = "BIP031"
_policy_logger = logging.getLogger("images.policy")


@dataclass(frozen=True)
class DockerfileCheck:
    """A check's result with what it was checked with (for SARIF and the UI)."""

    result: CheckResult
    policy: PolicyConfig
    service: ServiceContext | None
    purpose: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """The API body: `{"verdict", "findings", "stages"}`, messages in the request's
        language (the portal's rules; hadolint's own findings stay as hadolint words them)."""
        return self.result.to_dict(gettext)

    def localized(self) -> CheckResult:
        """The result with every portal finding's message in the request's language (pages)."""
        findings = tuple(
            replace(finding, message=finding.message_in(gettext))
            for finding in self.result.findings
        )
        return replace(self.result, findings=findings)

    def to_sarif(
        self, filename: str = "Dockerfile", *, help_base: str | None = None
    ) -> dict[str, Any]:
        """The SARIF 2.1.0 log of this check (`help_base`: the rule reference's URL).

        SARIF stays English whatever the request's language: code-scanning tools match a
        result across runs by its rule and text, and CI logs are read by every team alike;
        each result links its rule's page, which is in both languages."""
        return to_sarif(self.result, filename=filename, policy=self.policy, help_base=help_base)


ServiceContextResolver = Callable[[str, dt.date], ServiceContext]
_service_context_resolver: ServiceContextResolver | None = None


def dockerfile_service_resolver_register(resolver: ServiceContextResolver | None) -> None:
    """Tell the Dockerfile check how to turn a service name into a ServiceContext.

    Services and their policy exceptions live in the deployments app, a layer above this one;
    it registers its resolver when Django starts (`DeploymentsConfig.ready`), so the check can
    name a service without `images` importing `deployments`.
    """
    global _service_context_resolver
    _service_context_resolver = resolver


def dockerfile_service_context(name: str | None, *, today: dt.date) -> ServiceContext | None:
    """The ServiceContext of the service named `name` (None when no name is given): its
    language and the subjects of its unexpired policy exceptions.

    Raises:
        DockerfileInputError: the name is malformed or no such service exists (400).
    """
    if name is None or not name.strip():
        return None
    if _service_context_resolver is None:
        raise DockerfileInputError(
            gettext(
                "This portal has no services installed, so a Dockerfile cannot be checked for "
                "one; leave the service out."
            )
        )
    return _service_context_resolver(name.strip(), today)


def _policy_or_default() -> tuple[PolicyConfig, str | None]:
    """The admin policy (settings.PORTAL_POLICY_FILE), or the defaults and why."""
    path = getattr(settings, "PORTAL_POLICY_FILE", "") or None
    try:
        return load_policy(path), None
    except PolicyError as exc:
        _policy_logger.error("Policy file unusable, default policy applied: %s", exc)
        return load_policy(None), str(exc)


def dockerfile_check(
    *,
    text: str | bytes,
    service_name: str | None = None,
    purpose: str = "service",
    today: dt.date | None = None,
) -> DockerfileCheck:
    """Check a Dockerfile against the catalog and the standard (+ hadolint).

    The admin policy file (`settings.PORTAL_POLICY_FILE`) decides severities and ignores.
    When that file is missing or invalid the check does not fail: the default policy is
    applied, the error is logged, and a `BIP031` warning on line 1 says so (so the verdict is
    at least `warn` until the platform team fixes the file).

    Raises:
        DockerfileInputError: empty, non-UTF-8, NUL or over 256 KiB input (400/413), an
            unknown purpose or service (400).
    """
    if purpose not in PURPOSES:
        raise DockerfileInputError(
            gettext("Unknown purpose %(purpose)r; use one of %(purposes)s.")
            % {"purpose": str(purpose)[:40], "purposes": ", ".join(sorted(PURPOSES))}
        )
    today = today or timezone.localdate()
    try:
        decoded = decode_dockerfile(text)
    except DockerfileInputError as exc:  # its message in the request's language
        raise DockerfileInputError(exc.message_in(gettext), exc.status) from exc
    service = dockerfile_service_context(service_name, today=today)
    policy, policy_problem = _policy_or_default()
    result = check_dockerfile(
        decoded,
        catalog=policy_catalog(),
        service=service,
        purpose=purpose,
        policy=policy,
        today=today,
    )
    if policy_problem is not None:
        finding = Finding.of(
            POLICY_FALLBACK_RULE,
            "warn",
            1,
            Text(
                gettext_noop(
                    "The portal's policy file could not be loaded, so the default policy was "
                    "applied; the platform team has been told through the server log."
                )
            ),
        )
        findings = (finding, *result.findings)
        verdict = result.verdict if result.verdict == "fail" else "warn"
        result = replace(result, findings=findings, verdict=verdict)
    return DockerfileCheck(
        result=result, policy=policy, service=service, purpose=purpose, text=decoded
    )
