"""The policy report of an image request's recipe, computed when the request is submitted.

A Dockerfile recipe gets the Dockerfile check plus a `BUILD001` failure for every FROM that
is not an approved (or candidate) version in the portal's registry; a bootstrap recipe gets
the mmdebstrap and lifecycle rules (`BUILD002`–`BUILD004`); both get `BUILD005` when the
declared OS is not the recipe's. Each rule has a page (`images.rule_reference.build`). The
report is stored as computed, in the submitter's language.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from ..choices import ImageKind, ImageStatus, OsFamily, RecipeKind, VersionState
from ..models import ImageRequest
from ..policy import DockerfileInputError
from ..recipes import dockerfile_from_lines, parse_bootstrap_recipe
from ..references import ReferenceError
from ..selectors import base_image_resolve
from .catalog import DerivedStatus, derive_status
from .dockerfile import dockerfile_check

BOOTSTRAP_FAMILIES = frozenset({OsFamily.DEBIAN, OsFamily.UBUNTU})
# mmdebstrap's variants a base image is made with (BUILD004 warns about any other).
USUAL_VARIANTS = ("minbase", "buildd", "apt", "essential")

# The releases a bootstrap suite makes: (family, version).
SUITES: dict[str, tuple[str, str]] = {
    "buster": (OsFamily.DEBIAN, "10"),
    "bullseye": (OsFamily.DEBIAN, "11"),
    "bookworm": (OsFamily.DEBIAN, "12"),
    "trixie": (OsFamily.DEBIAN, "13"),
    "focal": (OsFamily.UBUNTU, "20.04"),
    "jammy": (OsFamily.UBUNTU, "22.04"),
    "noble": (OsFamily.UBUNTU, "24.04"),
}


def _declared(request: ImageRequest) -> str:
    return f"{request.get_os_family_display()} {request.os_version}".strip()


def _os_mismatch(
    request: ImageRequest, family: str, version: str, source: str
) -> dict[str, Any] | None:
    """BUILD005 when the request's declared OS is not what its recipe makes."""
    if not family:
        return None
    same_family = family == request.os_family
    same_version = not request.os_version or not version or version == request.os_version
    if same_family and same_version:
        return None
    label = OsFamily(family).label if family in OsFamily.values else family
    made = f"{label} {version}".strip()
    # Another OS family is wrong on every count (lifecycle, advisories, scans): fail. Another
    # release of the same family warns: the reviewer sees it (the demo's Debian 11 bootstrap
    # declares 12, since an EOL release fails BUILD003).
    return _finding(
        "BUILD005",
        "fail" if not same_family else "warn",
        1,
        _(
            "The request declares %(declared)s but %(source)s makes %(made)s: set OS and "
            "OS version to %(made)s, or change the recipe."
        )
        % {"declared": _declared(request), "source": source, "made": made},
    )


def _lifecycle_message(request: ImageRequest, derived: DerivedStatus) -> str:
    """BUILD003's message: why the declared OS would not be approvable."""
    if derived.status == ImageStatus.RESTRICTED:
        return _(
            "%(os)s is restricted by the standard (recurring vulnerabilities and maintenance "
            "cost): use an approved glibc runtime image instead."
        ) % {"os": _declared(request)}
    if derived.status == ImageStatus.DEPRECATED and derived.eol_date is not None:
        return _("%(os)s reached end of life on %(date)s; request a supported release.") % {
            "os": _declared(request),
            "date": derived.eol_date.isoformat(),
        }
    return _("%(os)s would not be approvable: its catalog status would be %(status)s.") % {
        "os": _declared(request),
        "status": ImageStatus(derived.status).label,
    }


def _finding(rule: str, severity: str, line: int, message: str) -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "line": line, "message": message}


def _verdict(findings: list[dict[str, Any]]) -> str:
    severities = {f["severity"] for f in findings}
    return "fail" if "fail" in severities else "warn" if "warn" in severities else "pass"


def _dockerfile_report(request: ImageRequest) -> dict[str, Any]:
    purpose = "runtime-recipe" if request.kind == ImageKind.RUNTIME else "build-recipe"
    try:
        report = dockerfile_check(text=request.recipe, purpose=purpose).to_dict()
    except DockerfileInputError as exc:
        return {"verdict": "fail", "findings": [_finding("BIP000", "fail", 1, exc.message)]}
    findings = list(report.get("findings", []))
    bases = []
    from_lines = dockerfile_from_lines(request.recipe)
    # The final stage's OS is what the request declares: the last FROM of an image.
    last_external = max((line.line for line in from_lines if line.external), default=0)
    for line in from_lines:
        if not line.external:
            continue
        entry: dict[str, Any] = {"line": line.line, "image": line.image, "pinned_ref": None}
        try:
            res = base_image_resolve(line.image)
        except ReferenceError as exc:
            findings.append(_finding("BUILD001", "fail", line.line, exc.text_in(_)))
            bases.append(entry)
            continue
        version = res.version
        if version is None or version.state not in VersionState.usable_as_base():
            why = "; ".join(res.reasons) or _("no approved or candidate version")
            findings.append(
                _finding(
                    "BUILD001",
                    "fail",
                    line.line,
                    _(
                        "FROM %(image)s cannot be built: it must be an approved (or candidate) "
                        "image version in the portal's registry (%(reasons)s)."
                    )
                    % {"image": line.image, "reasons": why},
                )
            )
        else:
            entry.update(pinned_ref=version.pull_ref, state=version.state)
            base = res.image or version.base_image
            if (
                line.line == last_external
                and base is not None
                and base.os_family not in ("", OsFamily.NONE)
            ):
                mismatch = _os_mismatch(
                    request, base.os_family, base.os_version, f"FROM {line.image}"
                )
                if mismatch is not None:
                    mismatch["line"] = line.line
                    findings.append(mismatch)
        bases.append(entry)
    report["findings"] = findings
    report["bases"] = bases
    report["verdict"] = _verdict(findings)
    return report


def _bootstrap_report(request: ImageRequest) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    recipe = parse_bootstrap_recipe(request.recipe, default_env={})
    if request.os_family not in BOOTSTRAP_FAMILIES:
        findings.append(
            _finding(
                "BUILD002",
                "fail",
                1,
                _(
                    "Bootstraps use mmdebstrap, which makes Debian or Ubuntu systems only; "
                    "%(os)s needs a Dockerfile recipe."
                )
                % {"os": request.get_os_family_display()},
            )
        )
    suite = SUITES.get(recipe.spec.suite)
    if suite is not None and request.os_family in BOOTSTRAP_FAMILIES:
        mismatch = _os_mismatch(request, suite[0], suite[1], f"suite {recipe.spec.suite}")
        if mismatch is not None:
            findings.append(mismatch)
    derived = derive_status(
        os_family=request.os_family,
        os_version=request.os_version,
        status=ImageStatus.APPROVED,
        today=timezone.localdate(),
    )
    if derived.status != ImageStatus.APPROVED:
        findings.append(_finding("BUILD003", "fail", 1, _lifecycle_message(request, derived)))
    if recipe.spec.variant not in USUAL_VARIANTS:
        findings.append(
            _finding(
                "BUILD004",
                "warn",
                1,
                _("Variant %(variant)s is unusual: base images use %(usual)s.")
                % {"variant": recipe.spec.variant, "usual": ", ".join(USUAL_VARIANTS)},
            )
        )
    return {
        "verdict": _verdict(findings),
        "findings": findings,
        "stages": [],
        "bootstrap": {
            "suite": recipe.spec.suite,
            "variant": recipe.spec.variant,
            "packages": list(recipe.spec.packages),
        },
    }


def image_request_policy_report(request: ImageRequest) -> dict[str, Any]:
    """The policy report of a request's recipe (`{"verdict", "findings", ...}`)."""
    if request.recipe_kind == RecipeKind.BOOTSTRAP:
        return _bootstrap_report(request)
    return _dockerfile_report(request)
