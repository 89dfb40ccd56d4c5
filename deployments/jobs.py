"""Job kinds of the deployments app."""

from __future__ import annotations

import contextlib
import hashlib
import re
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils import timezone

from images.builder import (
    BuildCancelled,
    BuildError,
    image_from_rootfs,
    oci_architecture,
    oci_labels,
    remove_image,
)
from images.buildjobs import JobLog, builder_config, push_and_read_back, retry_registry
from images.choices import SbomSubject
from images.models import Registry
from images.registry import RegistryError
from images.scanning.jobs import scan_tools
from images.scanning.normalize import normalize_packages
from images.scanning.store import sbom_storage
from images.scanning.syft import SyftError, run_syft
from images.services.findings import sbom_match
from images.services.scans import sbom_existing, sbom_record
from images.texts import _
from portal.actors import Actor
from portal.jobs import JobCancelled, JobContext, JobFailure, job_kind

from .choices import BinaryState
from .models import BinaryVersion
from .services import (
    APP_IMAGE_BASE_JOB_KIND,
    ARTIFACT_JOB_KIND,
    ARTIFACT_REPOSITORY,
    BACKFILL_FACTS_JOB_KIND,
    BINARY_SCAN_JOB_KIND,
    PLAN_WAVE_JOB_KIND,
    SHA256_LABEL,
    app_image_base_read,
    artifact_repository,
    binary_artifact_ref_problem,
    binary_facts_backfill,
    binary_scan_job_failed,
    binary_version_artifact_set,
    binary_version_scan_attach,
    binary_version_scan_mark_scanning,
    binary_versions_purge,
    plan_wave_release,
)
from .storage import binary_storage

__all__ = ["ARTIFACT_REPOSITORY", "SHA256_LABEL", "artifact_repository", "artifact_tag"]

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_CHUNK = 1 << 20


@job_kind("deployments.purge_binaries", timeout_seconds=1800, max_attempts=2, title="Binary purge")
def purge_binaries(ctx: JobContext) -> dict[str, Any]:
    """Retention: keep the newest N versions per service plus every version in use.

    Params: `keep` (optional) overrides PORTAL_BINARY_KEEP.
    """
    ctx.progress(0, "purging old binary versions")
    result = binary_versions_purge(
        actor=Actor.system_actor(f"job:{ctx.job.pk}"),
        keep=ctx.params.get("keep"),
        log=ctx.log,
    )
    ctx.log(f"purged {result['purged']} version(s), deleted {result['files_deleted']} file(s)")
    return result


@job_kind(PLAN_WAVE_JOB_KIND, timeout_seconds=3600, max_attempts=3, title="Plan wave")
def plan_wave(ctx: JobContext) -> dict[str, Any]:
    """Release one wave of a rebase/migration plan. Params: `plan_id`, `wave`.

    Safe to run again (a lost worker, a resume): only items still pending are released.
    """
    ctx.progress(0, f"plan {ctx.params['plan_id']}: wave {ctx.params['wave']}")
    result = plan_wave_release(
        plan_id=int(ctx.params["plan_id"]),
        wave=int(ctx.params["wave"]),
        progress=ctx.progress,
    )
    ctx.log(
        f"released {result['released']}, failed {result['failed']}, skipped {result['skipped']}, "
        f"building {result['building']}"
        + (f"; stopped: {result['stopped']}" if result["stopped"] else "")
    )
    return result


@job_kind(APP_IMAGE_BASE_JOB_KIND, queue="scans", timeout_seconds=300, title="App image base")
def app_image_base(ctx: JobContext) -> dict[str, Any]:
    """Read what an image-mode deployment's app image is built on (params: `deployment_id`,
    `app_image`): its `org.opencontainers.image.base.digest`, from the registry."""
    base = app_image_base_read(
        deployment_id=int(ctx.params["deployment_id"]), app_image=str(ctx.params["app_image"])
    )
    ctx.log(f"{ctx.params['app_image']} is built on {base or 'an unnamed base'}")
    return {"base_digest": base}


# --- binary → OCI artifact (image volumes) ------------------------------------------------


def artifact_tag(version: str, arch: str) -> str:
    """`<version>-<arch>` as a valid OCI tag (other characters become `_`, ≤ 128 chars)."""
    tag = _TAG_UNSAFE.sub("_", f"{version}-{arch}")
    if not tag or not re.match(r"[A-Za-z0-9_]", tag[0]):
        tag = "v" + tag
    return tag[:128]


class _HashingReader:
    """A read-only file wrapper that hashes what is read through it (for `tarfile.addfile`)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def write_binary_tar(binary: BinaryVersion, tar_path: Path) -> None:
    """Write a tar holding only `/<filename>` (mode 0555, root) streamed from storage.

    Raises:
        JobFailure: the stored file is missing, shorter than recorded or not the recorded
            sha256 (nothing is pushed then).
    """
    info = tarfile.TarInfo(name=binary.filename)
    info.size = binary.size
    info.mode = 0o555
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = int(binary.created_at.timestamp())
    try:
        handle = binary_storage().open(binary.file, "rb")
    except FileNotFoundError as exc:
        raise JobFailure(
            _(
                "The file of %(binary)s is missing from storage (%(file)s).",
                binary=str(binary),
                file=str(binary.file),
            )
        ) from exc
    with handle, tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        reader = _HashingReader(handle)
        try:
            tar.addfile(info, reader)  # copies in blocks: the file is never read whole
        except OSError as exc:
            raise JobFailure(
                _(
                    "The stored file of %(binary)s is shorter than its recorded %(size)s "
                    "bytes: %(error)s",
                    binary=str(binary),
                    size=binary.size,
                    error=str(exc),
                )
            ) from exc
        if handle.read(1):
            raise JobFailure(
                _(
                    "The stored file of %(binary)s is longer than %(size)s bytes.",
                    binary=str(binary),
                    size=binary.size,
                )
            )
    if reader.digest.hexdigest() != binary.sha256:
        raise JobFailure(
            _(
                "The stored file of %(binary)s has sha256 %(actual)s, not the recorded "
                "%(sha256)s: storage is corrupt; nothing was pushed.",
                binary=str(binary),
                actual=reader.digest.hexdigest(),
                sha256=binary.sha256,
            )
        )


def _registry() -> Registry:
    registry = Registry.objects.filter(is_default=True).first() or Registry.objects.first()
    if registry is None:
        raise JobFailure(
            _(
                "No registry is configured to push binaries to; add one in the catalog "
                "(Registry, is_default)."
            )
        )
    return registry


def _existing_artifact(ctx: JobContext, log: JobLog, binary: BinaryVersion) -> str | None:
    """The binary's artifact_ref when it passes the upload's checks, else None (push anew).

    Kept only if it is in a catalog registry, in `binaries/<service>`, resolves, and its
    `SHA256_LABEL` is the binary's sha256 (`binary_artifact_ref_problem`): a reference an
    uploader chose that fails any of these is replaced by the push.
    """
    ref = binary.artifact_ref
    if not ref:
        return None
    problem = retry_registry(
        ctx,
        log,
        f"check {ref}",
        lambda: binary_artifact_ref_problem(
            service=binary.service.name, sha256=binary.sha256, artifact_ref=ref
        ),
    )
    if problem is not None:
        log.portal(f"artifact_ref {ref} is not kept: {problem}; pushing a new artifact")
        return None
    return ref


def _push(ctx: JobContext, binary: BinaryVersion, actor: Actor) -> dict[str, Any]:
    log = JobLog(ctx, span=(20, 60))
    service = binary.service.name
    log.progress(2, f"checking {service} {binary.version} ({binary.arch})")
    if binary.state != BinaryState.ACTIVE:
        raise JobFailure(
            _(
                "%(binary)s is %(state)s; only active versions can be pushed as an OCI artifact.",
                binary=str(binary),
                state=str(binary.state),
            )
        )
    existing = _existing_artifact(ctx, log, binary)
    if existing is not None:
        log.portal(f"{binary} is already pushed as {existing} (the digest resolves): nothing to do")
        ctx.set_result_object(binary)
        log.flush()
        return {"binary_version": binary.pk, "artifact_ref": existing, "reused": True}
    registry = _registry()
    config = builder_config(registry)
    repository = artifact_repository(service)
    tag = artifact_tag(binary.version, binary.arch)
    destination = f"{registry.host}/{repository}:{tag}"
    local_tag = f"localhost/bip-artifact/{service}:bv{binary.pk}"
    labels = oci_labels(
        title=repository,
        version=tag,
        source_request=f"{settings.PORTAL_URL.rstrip('/')}/services/{service}/",
        recipe_text=f"{binary.sha256}  /{binary.filename}\n",
        created=timezone.now(),
        revision=binary.commit,
    )
    labels[SHA256_LABEL] = binary.sha256
    Path(settings.PORTAL_BUILD_WORK_DIR).mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(
            prefix="bip-artifact-", dir=settings.PORTAL_BUILD_WORK_DIR
        ) as work:
            tar = Path(work) / "binary.tar"
            log.progress(5, f"writing /{binary.filename} ({binary.size} bytes) into a layer")
            write_binary_tar(binary, tar)
            log.progress(20, "making the image FROM scratch with buildah")
            image_from_rootfs(
                str(tar),
                tag=local_tag,
                env={},
                cmd=[],
                labels=labels,
                config=config,
                log=log,
                should_cancel=ctx.should_cancel,
                arch=oci_architecture(binary.arch),
            )
        info = push_and_read_back(
            ctx,
            log,
            local_tag=local_tag,
            registry=registry,
            repository=repository,
            tag=tag,
            config=config,
            progress=(60, 85),
        )
    finally:
        with contextlib.suppress(BuildError, ValueError):
            remove_image(local_tag, config)
    artifact_ref = f"{registry.host}/{repository}@{info.digest}"
    log.progress(95, f"recording {artifact_ref}")
    binary_version_artifact_set(actor=actor, binary_version=binary, artifact_ref=artifact_ref)
    ctx.set_result_object(binary)
    log.portal(f"pushed {destination} as {artifact_ref} ({info.size} bytes)")
    log.flush()
    return {
        "binary_version": binary.pk,
        "artifact_ref": artifact_ref,
        "tag": destination,
        "digest": info.digest,
        "size": info.size,
        "reused": False,
    }


@job_kind(
    ARTIFACT_JOB_KIND,
    queue="builds",
    timeout_seconds=3600,
    max_attempts=2,
    title="Push binary as OCI artifact",
)
def push_artifact(ctx: JobContext) -> dict[str, Any]:
    """Push a binary version to the default registry as a FROM-scratch image; record its ref.

    Params: `binary_version_id`. The image holds only `/<filename>` (mode 0555, root) and is
    pushed as `<registry>/binaries/<service>:<version>-<arch>`; the digest read back from the
    registry becomes the version's `artifact_ref` (`<registry>/binaries/<service>@sha256:…`),
    which imageVolume manifests mount. Nothing happens when `artifact_ref` already resolves.
    """
    binary = (
        BinaryVersion.objects.select_related("service__team")
        .filter(pk=ctx.params.get("binary_version_id"))
        .first()
    )
    if binary is None:
        raise JobFailure(
            _(
                "Binary version #%(binary)s does not exist.",
                binary=str(ctx.params.get("binary_version_id")),
            )
        )
    try:
        return _push(ctx, binary, Actor.system_actor(f"job:{ctx.job.pk}"))
    except (BuildCancelled, JobCancelled) as exc:
        raise JobCancelled from exc
    except BuildError as exc:
        raise JobFailure(exc.message) from exc
    except RegistryError as exc:
        raise JobFailure(_("Registry error: %(error)s", error=str(exc))) from exc


@job_kind(
    BINARY_SCAN_JOB_KIND,
    queue="scans",
    timeout_seconds=3600,
    max_attempts=1,
    title="Binary scan",
    on_failure=binary_scan_job_failed,
)
def scan_binary(ctx: JobContext) -> dict[str, Any]:
    """syft on an uploaded binary's stored file (Go and Rust module lists), recorded as the
    SBOM of `sha256:<file sha256>`, then matched. Params: `binary_id`, optional `force`."""
    try:
        binary = BinaryVersion.objects.select_related("service").get(pk=ctx.params["binary_id"])
    except (KeyError, BinaryVersion.DoesNotExist) as exc:
        raise JobFailure(_("No binary version to scan (%(error)s).", error=str(exc))) from exc
    if binary.state == BinaryState.PURGED:
        raise JobFailure(_("%(binary)s is purged: its file is gone.", binary=str(binary)))
    digest = f"sha256:{binary.sha256}"
    binary_version_scan_mark_scanning(binary_id=binary.pk)
    log = JobLog(ctx)
    sbom = sbom_existing(digest)
    reused = (
        sbom is not None and not ctx.params.get("force") and sbom_storage().exists(sbom.blob_name)
    )
    if sbom is not None and reused:
        log.portal(f"{digest} was scanned before (SBOM #{sbom.pk}): reusing it")
    else:
        tools = scan_tools()
        with tempfile.TemporaryDirectory(prefix="scan-", dir=settings.PORTAL_SCAN_WORK_DIR) as tmp:
            log.progress(10, f"copy: {binary.filename} ({binary.size} bytes)")
            path = Path(tmp) / (_TAG_UNSAFE.sub("_", binary.filename) or "binary")
            digest_now = hashlib.sha256()
            with binary_storage().open(binary.file, "rb") as source, path.open("wb") as target:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    digest_now.update(chunk)
                    target.write(chunk)
            if digest_now.hexdigest() != binary.sha256:
                raise JobFailure(
                    _(
                        "The stored file of %(binary)s does not match its sha256.",
                        binary=str(binary),
                    )
                )
            log.progress(30, "syft: cataloguing modules")
            try:
                result = run_syft(
                    f"file:{path}",
                    tools=tools,
                    log=log,
                    should_cancel=ctx.should_cancel,
                    source_name=binary.service.name,
                    source_version=binary.version,
                )
            except SyftError as exc:
                log.flush()
                ctx.check_cancelled()
                raise JobFailure(exc.message) from exc
            log.progress(60, "packages: normalising")
            identities = normalize_packages(result.document, distro_ecosystem="")
            log.portal(f"{len(identities)} packages")
            sbom = sbom_record(
                digest=digest,
                subject=SbomSubject.BINARY,
                raw=result.raw,
                document=result.document,
                identities=identities,
                abi=None,
                job_id=ctx.job.pk,
            )
    binary_version_scan_attach(binary_id=binary.pk, sbom=sbom)
    ctx.set_result_object(binary)
    log.progress(85, "match: advisories")
    matched = sbom_match(sbom_id=sbom.pk)
    log.flush()
    return {
        "binary_id": binary.pk,
        "digest": digest,
        "sbom_id": sbom.pk,
        "reused": reused,
        "packages": sbom.package_count,
        "match": matched,
    }


@job_kind(BACKFILL_FACTS_JOB_KIND, timeout_seconds=3600, max_attempts=2, title="Binary facts")
def backfill_binary_facts(ctx: JobContext) -> dict[str, Any]:
    """Re-read the ELF facts (version needs, runpath, class) of versions uploaded before the
    current reader, from their stored files. Params: optional `batch_size`, `limit`."""
    ctx.progress(0, "reading stored binaries")
    result = binary_facts_backfill(
        batch_size=int(ctx.params.get("batch_size") or 200),
        limit=ctx.params.get("limit"),
        log=ctx.log,
    )
    ctx.log(f"{result['updated']} version(s) updated, {result['skipped']} skipped")
    return result


# The `make run` demo's job kind (deployments.demo) lives with the rest of the demo; source
# builds and app-image builds (issue 10) live in their own module.
from . import buildjobs as _buildjobs  # noqa: E402, F401
from . import demo as _demo  # noqa: E402, F401
