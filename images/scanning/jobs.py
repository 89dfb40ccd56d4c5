"""Job kinds of the scanner (`images.scan` on the `scans` queue).

copy (skopeo, once, by digest) → syft (on that copy) → packages → ABI (the same copy's
layers) → match → gate. A digest already scanned reuses its SBOM unless `force`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings

from images.texts import _
from portal.actors import Actor
from portal.jobs import JobContext, JobFailure, job_kind

from ..buildjobs.common import JobLog, retry_registry
from ..models import ImageVersion, Registry
from ..registry import RegistryUnavailable
from ..scanning.abi import AbiError, image_abi, read_oci_layout
from ..scanning.ecosystems import osv_ecosystem, syft_distro_os_release
from ..scanning.normalize import normalize_packages, unmapped_kinds
from ..scanning.store import sbom_storage
from ..scanning.syft import ScanTools, SyftError, copy_image, default_syft_binary, run_syft
from ..services import findings, gate
from ..services.scans import (
    SCAN_JOB_KIND,
    image_scan_job_failed,
    image_version_scan_attach,
    image_version_scan_mark_scanning,
    image_version_scan_record,
    sbom_existing,
)


def scan_tools(registry: Registry | None = None) -> ScanTools:
    """The tools' settings (TLS and credentials of `registry`, when an image is read)."""
    username = password = None
    tls_verify = True
    if registry is not None:
        username, password = registry.credentials()
        if (username is None) != (password is None):
            raise JobFailure(
                _(
                    "Registry %(registry)s: set both PORTAL_REGISTRY_%(env)s_USERNAME and "
                    "_PASSWORD, or neither.",
                    registry=registry.name,
                    env=registry.credentials_env,
                )
            )
        # skopeo's --src-tls-verify=false is also what lets it speak plain HTTP.
        tls_verify = registry.tls_verify and registry.uses_tls
    Path(settings.PORTAL_SCAN_WORK_DIR).mkdir(parents=True, exist_ok=True)
    return ScanTools(
        syft=settings.PORTAL_SYFT_BINARY or default_syft_binary(),
        timeout=float(settings.PORTAL_SCAN_TIMEOUT_SECONDS),
        tls_verify=tls_verify,
        username=username,
        password=password,
        cache_dir=str(Path(settings.PORTAL_SCAN_WORK_DIR) / "cache"),
    )


def _copy_retried(
    ctx: JobContext, log: JobLog, reference: str, layout: Path, tools: ScanTools
) -> None:
    """Copy the image, retrying an unreachable registry with backoff (the build jobs'
    PORTAL_BUILD_REGISTRY_RETRIES and PORTAL_BUILD_RETRY_BACKOFF_SECONDS), then fail clearly."""

    def copy() -> None:
        shutil.rmtree(layout, ignore_errors=True)  # no half copy of an earlier attempt
        try:
            copy_image(reference, layout, tools=tools, log=log, should_cancel=ctx.should_cancel)
        except SyftError as exc:
            if exc.unavailable:
                raise RegistryUnavailable(exc.message) from exc
            raise

    retry_registry(ctx, log, f"scan copy from {reference.split('/', 1)[0]}", copy)


def _musl_version(identities: list[Any]) -> str:
    return next((item.version for item in identities if item.name == "musl"), "")


@job_kind(
    SCAN_JOB_KIND,
    queue="scans",
    timeout_seconds=3600,
    max_attempts=1,
    title="Image scan",
    on_failure=image_scan_job_failed,
)
def scan_image(ctx: JobContext) -> dict[str, Any]:
    """Scan one image version's digest. Params: `version_id`, optional `force`."""
    try:
        version = ImageVersion.objects.select_related("registry", "base_image").get(
            pk=ctx.params["version_id"]
        )
    except (KeyError, ImageVersion.DoesNotExist) as exc:
        raise JobFailure(_("No image version to scan (%(error)s).", error=str(exc))) from exc
    actor = Actor.system_actor(f"job:{ctx.job.pk}")
    force = bool(ctx.params.get("force"))
    image_version_scan_mark_scanning(version_id=version.pk)
    reference = f"{version.registry.host}/{version.base_image.name}@{version.digest}"
    log = JobLog(ctx)
    sbom = sbom_existing(version.digest)
    reused = sbom is not None and not force and sbom_storage().exists(sbom.blob_name)
    if sbom is not None and reused:
        log.portal(f"{version.digest} was scanned before (SBOM #{sbom.pk}): reusing it")
        image_version_scan_attach(version_id=version.pk, sbom=sbom)
    else:
        tools = scan_tools(version.registry)
        with tempfile.TemporaryDirectory(prefix="scan-", dir=settings.PORTAL_SCAN_WORK_DIR) as tmp:
            layout = Path(tmp) / "oci"
            try:
                log.progress(5, f"copy: {reference}")
                _copy_retried(ctx, log, reference, layout, tools)
                ctx.check_cancelled()
                log.progress(30, "syft: cataloguing packages")
                result = run_syft(
                    f"oci-dir:{layout}",
                    tools=tools,
                    log=log,
                    should_cancel=ctx.should_cancel,
                    source_name=f"{version.registry.host}/{version.base_image.name}",
                    source_version=version.digest,
                )
            except SyftError as exc:
                log.flush()
                ctx.check_cancelled()
                raise JobFailure(exc.message) from exc
            ctx.check_cancelled()
            log.progress(55, "packages: normalising")
            distro = result.document.get("distro") or {}
            ecosystem = osv_ecosystem(syft_distro_os_release(distro))
            identities = normalize_packages(result.document, distro_ecosystem=ecosystem)
            log.portal(
                f"{len(result.document.get('artifacts') or [])} syft artifacts → "
                f"{len(identities)} packages; distro ecosystem {ecosystem or '(unknown)'}"
                + (
                    f"; no OSV ecosystem for {unmapped_kinds(result.document)}"
                    if unmapped_kinds(result.document)
                    else ""
                )
            )
            log.progress(65, "ABI: reading shared libraries")
            try:
                tree = read_oci_layout(layout, Path(tmp) / "abi")
                abi = image_abi(tree, musl_version=_musl_version(identities))
            except AbiError as exc:
                raise JobFailure(
                    _("ABI facts of %(reference)s: %(error)s", reference=reference, error=str(exc))
                ) from exc
            log.portal(
                f"libc {abi.libc_kind or '-'} {abi.libc_version}; loaders "
                f"{', '.join(abi.loader_paths) or '-'}; {len(abi.libraries)} shared libraries"
            )
            sbom = image_version_scan_record(
                version_id=version.pk,
                raw=result.raw,
                document=result.document,
                identities=identities,
                abi=abi,
                job_id=ctx.job.pk,
            )
    ctx.set_result_object(version)
    log.progress(85, "match: advisories")
    matched = findings.sbom_match(sbom_id=sbom.pk)
    log.progress(95, "gate: publish rule")
    verdict = gate.image_version_apply_gate(version_id=version.pk, actor=actor)
    log.flush()
    return {
        "version_id": version.pk,
        "digest": version.digest,
        "sbom_id": sbom.pk,
        "reused": reused,
        "ecosystem": sbom.ecosystem,
        "packages": sbom.package_count,
        "match": matched,
        "gate": verdict,
    }
