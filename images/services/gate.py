"""The publish gate: no unwaived finding at or above the threshold with a fix available.

Policy data lives in `images/policy/gate.yaml` (threshold, block_unfixed), overridable by the
admin file `settings.PORTAL_GATE_POLICY_FILE`. The verdict is recomputed at every attempt
from the version's open findings and the waivers active *now*, so a new advisory (new
findings from a re-match) or an expired waiver blocks without a rescan. A version that was
never scanned is blocked while `PORTAL_SCAN_REQUIRED` is on (the default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.templatetags.portal_i18n import status_label

from ..choices import RequestEventKind, RequestState, ScanState, VersionState
from ..models import Finding, ImageRequest, ImageVersion
from ..policy import PolicyError
from ..policy.gate import GATE_RANK, GatePolicy, load_gate_policy
from ._transitions import record_event
from .waivers import active_waivers_for

_logger = logging.getLogger(__name__)

CLEAN = "clean"
BLOCKED = "blocked"
UNSCANNED = "unscanned"


class GateBlocked(Conflict):
    """409: the gate blocks publishing this version; the detail lists what blocks it."""

    default_detail = "The publish gate blocks this version."
    default_code = "gate_blocked"


@dataclass(frozen=True)
class BlockingFinding:
    """One open, unwaived finding that blocks publishing, and how to waive it."""

    finding_id: int
    package: str
    source_name: str
    installed_version: str
    fixed_version: str
    fix_state: str
    advisory: str
    severity: str
    waive_url: str
    waive_api: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The API shape."""
        return {
            "finding": self.finding_id,
            "package": self.package,
            "source_name": self.source_name,
            "installed_version": self.installed_version,
            "fixed_version": self.fixed_version,
            "fix_state": self.fix_state,
            "advisory": self.advisory,
            "severity": self.severity,
            "waive": {"url": self.waive_url, "api": self.waive_api},
        }

    def line(self) -> str:
        """One line for a timeline event or an error message."""
        fix = f", fixed in {self.fixed_version}" if self.fixed_version else ", no fix yet"
        return f"{self.advisory} ({self.severity}) in {self.package} {self.installed_version}{fix}"


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one image version."""

    version_id: int
    verdict: str
    reason: str
    policy: GatePolicy
    blocking: tuple[BlockingFinding, ...] = ()
    waived: dict[int, int] = field(default_factory=dict)  # finding id → waiver id

    @property
    def clean(self) -> bool:
        """Whether the version may be published."""
        return self.verdict == CLEAN

    def to_dict(self) -> dict[str, Any]:
        """The API body."""
        return {
            "version": self.version_id,
            "verdict": self.verdict,
            "reason": self.reason,
            "policy": {
                "threshold": self.policy.threshold,
                "block_unfixed": self.policy.block_unfixed,
            },
            "blocking": [b.to_dict() for b in self.blocking],
            "waived": [{"finding": f, "waiver": w} for f, w in sorted(self.waived.items())],
        }

    def summary(self, limit: int = 20) -> str:
        """What the verdict says, with the blocking findings listed (for messages and events)."""
        if not self.blocking:
            return self.reason
        lines = [b.line() for b in self.blocking[:limit]]
        more = len(self.blocking) - limit
        if more > 0:
            lines.append(f"… and {more} more")
        return (
            f"{self.reason}\n"
            + "\n".join(f"- {line}" for line in lines)
            + "\nWaive one with a waiver request (Waivers → Request) or POST /api/v1/waivers/."
        )


def gate_policy() -> GatePolicy:
    """The effective gate policy; an unusable admin file falls back to the defaults (logged)."""
    path = getattr(settings, "PORTAL_GATE_POLICY_FILE", "") or None
    try:
        return load_gate_policy(path)
    except PolicyError as exc:
        _logger.error("Gate policy file unusable, defaults applied: %s", exc)
        return load_gate_policy(None)


def scan_required() -> bool:
    """Whether a version must have been scanned before it may be published."""
    return bool(getattr(settings, "PORTAL_SCAN_REQUIRED", True))


def _waive_links(version: ImageVersion, finding: Finding) -> tuple[str, dict[str, Any]]:
    query = urlencode(
        {
            "advisory": finding.advisory.osv_id,
            "image_version": version.pk,
            "package": finding.package.name,
        }
    )
    url = f"{reverse('images:waiver-create')}?{query}"
    api = {
        "method": "POST",
        "url": reverse("api:waiver-list"),
        "body": {
            "advisory_ref": finding.advisory.osv_id,
            "scope": "image_version",
            "image_version": version.pk,
            "package_name": finding.package.name,
        },
    }
    return url, api


def image_version_gate(version: ImageVersion, *, policy: GatePolicy | None = None) -> GateResult:
    """The gate's verdict on `version` now: its open findings minus the waivers active for
    the version, its base image and the image's owner team."""
    policy = policy or gate_policy()
    if version.scan_state != ScanState.SCANNED or version.sbom_id is None:
        if scan_required():
            state = ScanState(version.scan_state).label if version.scan_state else _("Not scanned")
            scan = {"state": state, "error": version.scan_error[:300]}
            return GateResult(
                version_id=version.pk,
                verdict=UNSCANNED,
                reason=(
                    _(
                        "Not scanned yet (%(state)s: %(error)s); a version is published only "
                        "after a clean scan."
                    )
                    if version.scan_error
                    else _(
                        "Not scanned yet (%(state)s); a version is published only after a clean "
                        "scan."
                    )
                )
                % scan,
                policy=policy,
            )
        return GateResult(
            version_id=version.pk,
            verdict=CLEAN,
            reason="Not scanned; scans are not required here (PORTAL_SCAN_REQUIRED is off).",
            policy=policy,
        )
    findings = list(
        Finding.objects.filter(sbom_id=version.sbom_id, resolved_at__isnull=True)
        .select_related("package", "advisory")
        .order_by("id")
    )
    base_image = version.base_image
    waivers = active_waivers_for(
        findings,
        image_version_id=version.pk,
        base_image_id=version.base_image_id,
        team_id=base_image.owner_team_id,
    )
    blocking = []
    for finding in findings:
        if finding.pk in waivers:
            continue
        if not policy.blocks(severity=finding.severity, fix_state=finding.fix_state):
            continue
        url, api = _waive_links(version, finding)
        blocking.append(
            BlockingFinding(
                finding_id=finding.pk,
                package=finding.package.name,
                source_name=finding.package.source_name,
                installed_version=finding.installed_version,
                fixed_version=finding.fixed_version,
                fix_state=finding.fix_state,
                advisory=finding.advisory.osv_id,
                severity=finding.severity,
                waive_url=url,
                waive_api=api,
            )
        )
    blocking.sort(key=lambda b: (-GATE_RANK.get(b.severity, 0), b.advisory, b.package))
    waived = {f: w.pk for f, w in waivers.items()}
    values = {
        "count": len(blocking),
        "severity": status_label(policy.threshold),
        "open": len(findings),
        "waived": len(waived),
    }
    if blocking:
        reason = (
            _(
                "Blocked: %(count)s open finding(s) %(severity)s or worse (fixable or not) and "
                "not waived."
            )
            if policy.block_unfixed
            else _(
                "Blocked: %(count)s open finding(s) %(severity)s or worse with a fix available "
                "and not waived."
            )
        ) % values
        verdict = BLOCKED
    else:
        reason = (
            _(
                "Clean: no open unwaived finding %(severity)s or worse (fixable or not) "
                "(%(open)s open, %(waived)s waived)."
            )
            if policy.block_unfixed
            else _(
                "Clean: no open unwaived finding %(severity)s or worse with a fix available "
                "(%(open)s open, %(waived)s waived)."
            )
        ) % values
        verdict = CLEAN
    return GateResult(
        version_id=version.pk,
        verdict=verdict,
        reason=reason,
        policy=policy,
        blocking=tuple(blocking),
        waived=waived,
    )


def image_version_require_gate(version: ImageVersion) -> GateResult:
    """The verdict, or GateBlocked (409, code `gate_blocked`) listing what blocks it."""
    result = image_version_gate(version)
    if not result.clean:
        error = GateBlocked(f"The publish gate blocks {version}. {result.summary()}")
        error.blocking = [b.to_dict() for b in result.blocking]  # type: ignore[attr-defined]
        raise error
    return result


def image_version_apply_gate(*, version_id: int, actor: Actor) -> dict[str, Any]:
    """Evaluate the gate for a scanned version and move its `scanning` requests along:
    clean → published (auto-publish, or the build asked to publish: `publish: true`) or left
    for a reviewer with an event saying the scan is clean; blocked → an event listing which
    findings block it and how to waive them. Versions that are no longer candidates are
    evaluated and reported, never moved.

    Returns the gate's body plus `published` (bool) and `requests` (the waiting request ids).
    """
    from .builds import auto_publish_enabled  # noqa: PLC0415 - builds ↔ publish ↔ gate
    from .publish import image_version_publish  # noqa: PLC0415

    version = ImageVersion.objects.select_related("base_image", "registry", "build_job").get(
        pk=version_id
    )
    result = image_version_gate(version)
    waiting = list(ImageRequest.objects.filter(image_version=version, state=RequestState.SCANNING))
    published = False
    body = result.to_dict()
    # Publish on a clean gate when the rule says so for requests, or when the build that made
    # the version asked for it (the portal's own bootstraps, `publish: true`).
    build_asked = version.build_job is not None and bool(version.build_job.params.get("publish"))
    wants = (bool(waiting) and auto_publish_enabled()) or build_asked
    if result.clean and wants and version.state == VersionState.CANDIDATE:
        image_version_publish(version=version, actor=actor)
        published = True
    elif waiting:
        if result.clean:
            text = f"Scan clean — {result.reason} Waiting for a reviewer to publish."
        else:
            text = f"The publish gate blocks this candidate. {result.summary()}"
        with transaction.atomic():
            for request in waiting:
                record_event(request, RequestEventKind.COMMENT, actor, text)
    body["published"] = published
    body["requests"] = [r.pk for r in waiting]
    return body
