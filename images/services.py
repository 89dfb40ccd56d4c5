"""Writes of the images app: catalog entries, derived status, versions found in registries."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from portal.actors import Actor
from portal.audit import audit_record

from .catalog_cache import policy_catalog
from .choices import ImageStatus, OsFamily, VersionState
from .lifecycle import lifecycle_for
from .models import BaseImage, ImageVersion, Registry
from .policy import (
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
from .policy.engine import decode_dockerfile
from .policy.rules import PURPOSES

SCRATCH_NOTE = "Not recommended: only for static C/C++ binaries (no libc, no shell, no CA certs)."
ALPINE_NOTE = (
    "Restricted by the standard: musl-based, recurring vulnerabilities and maintenance cost. "
    "Use an approved glibc runtime image instead."
)


@dataclass(frozen=True)
class DerivedStatus:
    """What the standard says about an image's OS, before any manual decision."""

    status: str
    note: str
    eol_date: dt.date | None
    replacement_family: str = ""
    replacement_version: str = ""


def derive_status(*, os_family: str, os_version: str, status: str, today: dt.date) -> DerivedStatus:
    """Apply the standard's rules: alpine → restricted; scratch → note; EOL → deprecated.

    A manual `blocked` is kept; a manual `restricted` or `deprecated` is never relaxed here.
    """
    life = lifecycle_for(os_family, os_version) if os_family != OsFamily.NONE else None
    eol = life.eol if life else None
    if os_family == OsFamily.ALPINE:
        new_status = (
            ImageStatus.BLOCKED if status == ImageStatus.BLOCKED else ImageStatus.RESTRICTED
        )
        return DerivedStatus(new_status, ALPINE_NOTE, eol, "debian", "12")
    if os_family == OsFamily.NONE:
        return DerivedStatus(status, SCRATCH_NOTE, None)
    if life is not None and life.is_eol(today):
        new_status = status if status == ImageStatus.BLOCKED else ImageStatus.DEPRECATED
        family = OsFamily(life.family).label if life.family in OsFamily.values else life.family
        note = f"{family} {life.version} reached end of life on {life.eol.isoformat()}."
        return DerivedStatus(
            new_status, note, eol, life.replacement_family, life.replacement_version
        )
    return DerivedStatus(status, "", eol)


def _snapshot(image: BaseImage) -> dict[str, Any]:
    data = model_to_dict(
        image,
        fields=[
            "name",
            "kind",
            "os_family",
            "os_version",
            "toolchain",
            "status",
            "status_note",
            "description",
        ],
    )
    data["eol_date"] = image.eol_date.isoformat() if image.eol_date else None
    data["replacement"] = image.replacement.name if image.replacement_id else None
    return data


def _pick_replacement(image: BaseImage, derived: DerivedStatus) -> BaseImage | None:
    if image.replacement_id or not derived.replacement_family:
        return image.replacement
    candidates = BaseImage.objects.filter(kind=image.kind, status=ImageStatus.APPROVED).exclude(
        pk=image.pk
    )
    return (
        candidates.filter(
            os_family=derived.replacement_family, os_version=derived.replacement_version
        ).first()
        or candidates.filter(os_family=derived.replacement_family).first()
        or candidates.filter(os_family=OsFamily.DEBIAN).first()
    )


def base_image_apply_lifecycle(
    *, image: BaseImage, actor: Actor, today: dt.date | None = None
) -> BaseImage:
    """Recompute the derived status, note, EOL date and replacement; audit any change."""
    today = today or timezone.localdate()
    before = _snapshot(image)
    derived = derive_status(
        os_family=image.os_family, os_version=image.os_version, status=image.status, today=today
    )
    image.status = derived.status
    image.status_note = derived.note
    image.eol_date = derived.eol_date
    image.replacement = _pick_replacement(image, derived)
    image.full_clean()
    after = _snapshot(image)
    if after != before:
        with transaction.atomic():
            image.save()
            audit_record(
                actor=actor, action="base_image.lifecycle", obj=image, before=before, after=after
            )
    return image


def base_image_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    os_family: str,
    os_version: str,
    owner_team: Any,
    toolchain: str = "",
    description: str = "",
    registry: Registry | None = None,
    replacement: BaseImage | None = None,
    status: str = ImageStatus.APPROVED,
) -> BaseImage:
    """Add a catalog entry, with its derived status applied."""
    derived = derive_status(
        os_family=os_family, os_version=os_version, status=status, today=timezone.localdate()
    )
    image = BaseImage(
        name=name,
        kind=kind,
        os_family=os_family,
        os_version=os_version,
        toolchain=toolchain,
        owner_team=owner_team,
        description=description,
        registry=registry,
        status=derived.status,
        status_note=derived.note,
        eol_date=derived.eol_date,
        replacement=replacement,
    )
    image.replacement = _pick_replacement(image, derived)
    image.full_clean()
    with transaction.atomic():
        image.save()
        audit_record(actor=actor, action="base_image.create", obj=image, after=_snapshot(image))
    return image


def image_version_record(
    *,
    actor: Actor,
    image: BaseImage,
    registry: Registry,
    tag: str,
    digest: str,
    size: int | None,
    arch: str,
    recipe: str = "",
    state: str = VersionState.CANDIDATE,
) -> tuple[ImageVersion, bool]:
    """Record a digest found in (or pushed to) a registry; return (version, created).

    A digest is immutable: when it is already known, only a new tag is added to it.
    """
    with transaction.atomic():
        version = ImageVersion.objects.select_for_update().filter(digest=digest).first()
        if version is not None:
            if tag not in version.tags:
                before = {"tags": list(version.tags)}
                version.tags = sorted({*version.tags, tag})
                version.save(update_fields=["tags", "updated_at"])
                audit_record(
                    actor=actor,
                    action="image_version.tag",
                    obj=version,
                    before=before,
                    after={"tags": version.tags},
                )
            return version, False
        version = ImageVersion(
            base_image=image,
            registry=registry,
            tag=tag,
            tags=[tag],
            digest=digest,
            size=size,
            arch=arch,
            recipe=recipe,
            state=state,
        )
        version.full_clean()
        version.save()
        audit_record(
            actor=actor,
            action="image_version.create",
            obj=version,
            after={"tag": tag, "digest": digest, "size": size, "arch": arch, "state": state},
        )
    return version, True


# --- Dockerfile checks (the API endpoint and the UI page call this) -----------------------------

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
        """The API body: `{"verdict", "findings", "stages"}`."""
        return self.result.to_dict()

    def to_sarif(self, filename: str = "Dockerfile") -> dict[str, Any]:
        """The SARIF 2.1.0 log of this check."""
        return to_sarif(self.result, filename=filename, policy=self.policy)


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
            "This portal has no services installed, so a Dockerfile cannot be checked for one; "
            "leave the service out."
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
            f"Unknown purpose {str(purpose)[:40]!r}; use one of {', '.join(sorted(PURPOSES))}."
        )
    today = today or timezone.localdate()
    decoded = decode_dockerfile(text)
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
        finding = Finding(
            POLICY_FALLBACK_RULE,
            "warn",
            1,
            "The portal's policy file could not be loaded, so the default policy was applied; "
            "the platform team has been told through the server log.",
        )
        findings = (finding, *result.findings)
        verdict = result.verdict if result.verdict == "fail" else "warn"
        result = replace(result, findings=findings, verdict=verdict)
    return DockerfileCheck(
        result=result, policy=policy, service=service, purpose=purpose, text=decoded
    )
