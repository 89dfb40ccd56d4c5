"""Writes of the deployments app: services, binary versions, environments, deployments, releases.

Every function is keyword-only, checks who acts (`Actor`) against the owning team, validates
before writing, writes inside one transaction and records an audit row in it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.auth import token_create
from portal.choices import Role, Scope, role_at_least
from portal.jobs import IllegalTransition, job_create
from portal.models import ApiToken, Job, Team

from .choices import BinaryState, DeliveryStrategy, DeploymentMode, normalize_arch
from .elf import BinaryAnalysisError, analyze_binary
from .manifests import (
    FETCH_TOKEN_KEY,
    FETCH_TOKEN_SECRET,
    IMAGE_VOLUME_MIN_K8S,
    ManifestError,
    ManifestInput,
    render_app_dockerfile,
    render_deployment,
    resource_errors,
)
from .manifests.validation import validate_manifest
from .models import BinaryVersion, Deployment, Environment, Release, Service
from .storage import binary_delete, binary_store

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$")
_COMMIT = re.compile(r"^[A-Za-z0-9._/-]{0,64}$")
_PINNED = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9._-]+)+(?::[\w.-]+)?@sha256:[0-9a-f]{64}$"
)
_K8S_MINOR = re.compile(r"^v?(\d+)\.(\d+)")
ARTIFACT_JOB_KIND = "deployments.push_artifact"
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESOURCE_KEYS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")
# Names the UI uses as path segments (/services/new/, /environments/new/).
RESERVED_NAMES = frozenset({"new"})


def _refuse_reserved(name: str, what: str) -> None:
    if name in RESERVED_NAMES:
        raise ValidationError(
            {"name": f"{name!r} is reserved (the page /{what}/{name}/); choose another name."}
        )


# --- permissions --------------------------------------------------------------------------


def require_team_role(*, actor: Actor, team: Team, minimum: str, what: str) -> None:
    """Refuse (403) unless the actor holds at least `minimum` in `team`.

    Tokens act for their own team only (as its maintainer at most); platform admins of
    another team are not members and are refused like anyone else.
    """
    role = actor.role_in(team)
    if role is None or not role_at_least(role, minimum):
        who = (
            "This token belongs to another team"
            if actor.token is not None
            else (f"You are not a {minimum} of team {team.name}")
        )
        if actor.token is not None and actor.token.team_id == team.pk:
            who = f"This token's team role is below {minimum}"
        raise PermissionDenied(f"{who}: only team {team.name} ({minimum} or above) may {what}.")


# --- services -----------------------------------------------------------------------------


def service_create(
    *,
    actor: Actor,
    name: str,
    team: Team,
    language: str = "other",
    repo_url: str = "",
    default_mode: str = DeploymentMode.VOLUME,
    description: str = "",
) -> Service:
    """Register a service of `team` (maintainers and above)."""
    require_team_role(actor=actor, team=team, minimum=Role.MAINTAINER, what="create its services")
    _refuse_reserved(name, "services")
    if Service.objects.filter(name=name).exists():
        raise Conflict(f"A service named {name!r} already exists.", code="duplicate")
    service = Service(
        name=name,
        team=team,
        language=language,
        repo_url=repo_url,
        default_mode=default_mode,
        description=description,
    )
    service.full_clean()
    with transaction.atomic():
        service.save()
        audit_record(
            actor=actor,
            action="service.create",
            obj=service,
            after={"name": name, "team": team.name, "language": language, "mode": default_mode},
        )
    return service


# --- binary versions ----------------------------------------------------------------------


def _clean_filename(name: str, fallback: str) -> str:
    base = (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return base if _FILENAME.match(base) and base not in {".", ".."} else fallback


def _upload_errors(
    *, version: str, arch: str, sha256: str, commit: str, build_url: str, artifact_ref: str
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not version:
        errors["version"] = "Give the version (e.g. 1.4.2 or 2024.06.01-3)."
    elif not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$", version):
        errors["version"] = (
            f"{version!r} is not a version: use 1-128 letters, digits and . _ + -, "
            "starting with a letter or digit."
        )
    if not arch:
        errors["arch"] = "Give the architecture (x86_64/amd64, aarch64/arm64, … or noarch)."
    elif normalize_arch(arch) is None:
        errors["arch"] = f"Unknown architecture {arch!r}: use x86_64 (amd64), aarch64 (arm64), …"
    if not sha256:
        errors["sha256"] = "Give the file's sha256 (64 hex digits) so the upload can be checked."
    elif not _SHA256.match(sha256.lower()):
        errors["sha256"] = f"{sha256!r} is not a sha256: expected 64 hex digits."
    if not _COMMIT.match(commit):
        errors["commit"] = "A commit is at most 64 letters, digits and . _ / -."
    if build_url:
        try:
            URLValidator(schemes=["http", "https"])(build_url)
        except ValidationError:
            errors["build_url"] = f"{build_url!r} is not an http(s) URL."
    if artifact_ref and not _PINNED.match(artifact_ref):
        errors["artifact_ref"] = (
            "artifact_ref must be a digest-pinned reference: registry/repo@sha256:<64 hex>."
        )
    return errors


def binary_version_upload(
    *,
    actor: Actor,
    service: Service,
    upload: Any,
    version: str,
    arch: str,
    sha256: str,
    commit: str = "",
    build_url: str = "",
    artifact_ref: str = "",
) -> tuple[BinaryVersion, bool]:
    """Record an uploaded binary: check it, store it by hash, create the row; (row, created).

    `upload` is the streamed `HashedUploadedFile` (its `sha256` and `size` were computed while
    it was written). The file and the row appear together or not at all: the file is stored
    first, and removed again when the row cannot be written (unless another row uses the
    same bytes). Re-sending an existing (version, arch) with the same bytes returns the
    existing row (created=False).

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        ValidationError: a missing or malformed field, a checksum mismatch, a corrupt ELF
            file, or an architecture that is not the file's.
        Conflict: the (version, arch) already exists with other bytes.
    """
    require_team_role(
        actor=actor, team=service.team, minimum=Role.DEVELOPER, what="upload its binaries"
    )
    version, arch, sha256 = version.strip(), arch.strip(), sha256.strip()
    commit, build_url, artifact_ref = commit.strip(), build_url.strip(), artifact_ref.strip()
    errors = _upload_errors(
        version=version,
        arch=arch,
        sha256=sha256,
        commit=commit,
        build_url=build_url,
        artifact_ref=artifact_ref,
    )
    if upload is None:
        errors["file"] = "Attach the binary as the multipart form field 'file'."
    if errors:
        raise ValidationError(errors)
    claimed = sha256.lower()
    actual = upload.sha256
    if claimed != actual:
        raise ValidationError(
            {
                "sha256": f"Checksum mismatch: you sent {claimed}, the received file's sha256 "
                f"is {actual} ({upload.size} bytes). Nothing was stored."
            }
        )
    try:
        facts = analyze_binary(upload.temporary_file_path())
    except BinaryAnalysisError as exc:
        raise ValidationError({"file": f"Cannot read this binary: {exc}."}) from exc
    arch_name = normalize_arch(arch) or arch
    if facts.is_elf and facts.machine != arch_name:
        raise ValidationError(
            {
                "arch": f"The file is a {facts.machine} ELF binary, but arch says {arch} "
                f"({arch_name})."
            }
        )
    existing = BinaryVersion.objects.filter(
        service=service, version=version, arch=arch_name
    ).first()
    if existing is not None:
        return _same_or_conflict(existing, actual)

    filename = _clean_filename(upload.name, service.name)
    name, stored_now = binary_store(sha256=actual, content=upload)
    row = BinaryVersion(
        service=service,
        version=version,
        arch=arch_name,
        filename=filename,
        file=name,
        sha256=actual,
        size=upload.size,
        file_type=facts.file_type,
        linkage=facts.linkage,
        interpreter=facts.interpreter,
        needed=list(facts.needed),
        min_glibc=facts.min_glibc,
        libc=facts.libc,
        commit=commit,
        build_url=build_url,
        artifact_ref=artifact_ref,
        uploaded_by=actor.user if actor.user is not None and actor.user.pk else None,
        uploaded_by_token=actor.token,
    )
    try:
        row.full_clean(validate_constraints=False)
        with transaction.atomic():
            row.save()
            audit_record(
                actor=actor,
                action="binary_version.upload",
                obj=row,
                after={
                    "service": service.name,
                    "version": version,
                    "arch": arch_name,
                    "sha256": actual,
                    "size": upload.size,
                    "file_type": facts.file_type,
                    "linkage": facts.linkage,
                    "min_glibc": facts.min_glibc,
                },
            )
    except IntegrityError:
        _forget_file(name, actual, stored_now)
        existing = BinaryVersion.objects.filter(
            service=service, version=version, arch=arch_name
        ).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, actual)
    except BaseException:
        _forget_file(name, actual, stored_now)
        raise
    return row, True


def _same_or_conflict(existing: BinaryVersion, sha256: str) -> tuple[BinaryVersion, bool]:
    if existing.sha256 == sha256:
        return existing, False
    raise Conflict(
        f"{existing.service.name} {existing.version} ({existing.arch}) already exists with "
        f"sha256 {existing.sha256}; versions are immutable: upload a new version.",
        code="duplicate",
    )


def _forget_file(name: str, sha256: str, stored_now: bool) -> None:
    """Remove a file stored for a row that was not written (unless a row uses the bytes)."""
    if (
        stored_now
        and not BinaryVersion.objects.filter(sha256=sha256)
        .exclude(state=BinaryState.PURGED)
        .exists()
    ):
        binary_delete(name)


def binary_version_yank(*, actor: Actor, binary_version: BinaryVersion) -> BinaryVersion:
    """Hide a version from new releases; releases that use it keep working."""
    require_team_role(
        actor=actor,
        team=binary_version.service.team,
        minimum=Role.DEVELOPER,
        what="yank its binaries",
    )
    with transaction.atomic():
        updated = BinaryVersion.objects.filter(
            pk=binary_version.pk, state=BinaryState.ACTIVE
        ).update(state=BinaryState.YANKED)
        if not updated:
            binary_version.refresh_from_db(fields=["state"])
            raise IllegalTransition(
                f"{binary_version} is {binary_version.state}; only active versions can be yanked."
            )
        binary_version.state = BinaryState.YANKED
        audit_record(
            actor=actor,
            action="binary_version.yank",
            obj=binary_version,
            before={"state": BinaryState.ACTIVE},
            after={"state": BinaryState.YANKED},
        )
    return binary_version


def binary_version_artifact_push(
    *, actor: Actor, binary_version: BinaryVersion
) -> tuple[Job, bool]:
    """Start the job that pushes the binary to the registry as an OCI image; (job, created).

    One live push per binary version (an idempotency key): asking again while one is queued
    or running returns that job. The job does nothing when `artifact_ref` is already set and
    its digest still resolves.

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        Conflict: the version is yanked or purged (its bytes are not for new releases).
    """
    service = binary_version.service
    require_team_role(
        actor=actor, team=service.team, minimum=Role.DEVELOPER, what="push its binaries"
    )
    if binary_version.state != BinaryState.ACTIVE:
        raise Conflict(
            f"{binary_version} is {binary_version.state}; only active versions can be pushed "
            "as an OCI artifact.",
            code="not_active",
        )
    return job_create(
        kind=ARTIFACT_JOB_KIND,
        actor=actor,
        params={"binary_version_id": binary_version.pk},
        target=binary_version,
        team=service.team,
        idempotency_key=f"binary-artifact:{binary_version.pk}",
    )


def binary_version_artifact_set(
    *, actor: Actor, binary_version: BinaryVersion, artifact_ref: str
) -> BinaryVersion:
    """Record the digest-pinned OCI artifact (`host/repo@sha256:…`) holding the binary.

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        ValidationError: `artifact_ref` is not digest-pinned.
    """
    require_team_role(
        actor=actor,
        team=binary_version.service.team,
        minimum=Role.DEVELOPER,
        what="record its artifacts",
    )
    if not _PINNED.match(artifact_ref):
        raise ValidationError(
            {
                "artifact_ref": "artifact_ref must be a digest-pinned reference: "
                f"registry/repo@sha256:<64 hex>, got {artifact_ref!r}."
            }
        )
    with transaction.atomic():
        before = (
            BinaryVersion.objects.select_for_update()
            .filter(pk=binary_version.pk)
            .values_list("artifact_ref", flat=True)
            .get()
        )
        BinaryVersion.objects.filter(pk=binary_version.pk).update(artifact_ref=artifact_ref)
        binary_version.artifact_ref = artifact_ref
        audit_record(
            actor=actor,
            action="binary_version.artifact",
            obj=binary_version,
            before={"artifact_ref": before},
            after={"artifact_ref": artifact_ref},
        )
    return binary_version


def binary_versions_in_use() -> set[int]:
    """Ids of binary versions a live release (newest per deployment) or a deployment uses."""
    live = Release.objects.filter(
        pk__in=Deployment.objects.annotate(last=Max("releases__id")).values("last")
    ).values_list("binary_version_id", flat=True)
    current = Deployment.objects.exclude(binary_version=None).values_list(
        "binary_version_id", flat=True
    )
    return set(live) | set(current)


def binary_versions_purge(
    *, actor: Actor, keep: int | None = None, log: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Retention: per service keep the newest `keep` versions plus every version in use.

    Older versions become `purged` (row kept for history) and their file is deleted unless
    a remaining version has the same bytes.
    """
    keep = settings.PORTAL_BINARY_KEEP if keep is None else keep
    in_use = binary_versions_in_use()
    purged = files = 0
    for service in Service.objects.order_by("name"):
        versions = list(
            service.binary_versions.exclude(state=BinaryState.PURGED).order_by("-created_at", "-id")
        )
        for bv in versions[keep:]:
            if bv.pk in in_use:
                continue
            with transaction.atomic():
                updated = BinaryVersion.objects.filter(pk=bv.pk, state=bv.state).update(
                    state=BinaryState.PURGED
                )
                if not updated:
                    continue
                audit_record(
                    actor=actor,
                    action="binary_version.purge",
                    obj=bv,
                    before={"state": bv.state},
                    after={"state": BinaryState.PURGED},
                )
            purged += 1
            still_used = BinaryVersion.objects.filter(sha256=bv.sha256).exclude(
                state=BinaryState.PURGED
            )
            if not still_used.exists():
                binary_delete(bv.file)
                files += 1
            log(f"purged {bv} ({bv.sha256[:12]})")
    return {"purged": purged, "files_deleted": files, "kept_in_use": len(in_use)}


# --- environments -------------------------------------------------------------------------


def environment_create(
    *,
    actor: Actor,
    name: str,
    namespace: str,
    k8s_version: str,
    delivery_strategy: str = DeliveryStrategy.HOSTPATH,
    hostpath_root: str = "/data/bin",
    fetch_token_secret: str = FETCH_TOKEN_SECRET,
    description: str = "",
) -> Environment:
    """Add an environment (platform admins: environments are shared by every team)."""
    if not actor.is_platform_admin:
        raise PermissionDenied("Only platform admins may create environments.")
    _refuse_reserved(name, "environments")
    if Environment.objects.filter(name=name).exists():
        raise Conflict(f"An environment named {name!r} already exists.", code="duplicate")
    environment = Environment(
        name=name,
        namespace=namespace,
        k8s_version=k8s_version,
        delivery_strategy=delivery_strategy,
        hostpath_root=hostpath_root or "/data/bin",
        fetch_token_secret=fetch_token_secret or FETCH_TOKEN_SECRET,
        description=description,
    )
    environment.full_clean()
    with transaction.atomic():
        environment.save()
        audit_record(
            actor=actor,
            action="environment.create",
            obj=environment,
            after={
                "name": name,
                "namespace": namespace,
                "k8s_version": k8s_version,
                "delivery_strategy": delivery_strategy,
                "hostpath_root": environment.hostpath_root,
                "fetch_token_secret": environment.fetch_token_secret,
            },
        )
    return environment


@dataclass(frozen=True)
class FetchToken:
    """A new download token for an environment's nodes; `secret` is shown once, never stored."""

    token: ApiToken
    secret: str
    secret_name: str
    namespace: str

    @property
    def kubectl_command(self) -> str:
        """The command that puts the token into the environment's namespace."""
        return (
            f"kubectl create secret generic {self.secret_name} "
            f"--from-literal={FETCH_TOKEN_KEY}={self.secret} -n {self.namespace}"
        )


def _platform_team_of(actor: Actor) -> Team:
    if actor.token is not None:
        return actor.token.team
    if actor.user is not None:
        for membership in actor.user.memberships.select_related("team"):
            if membership.team.is_platform and membership.role == Role.PLATFORM_ADMIN:
                return membership.team
    team = Team.objects.filter(is_platform=True).order_by("pk").first()
    if team is None:
        raise ValidationError("No platform team exists to own the fetch token.")
    return team


def environment_fetch_token_create(*, environment: Environment, actor: Actor) -> FetchToken:
    """Create the token an environment's nodes download binaries with (platform admins).

    The token belongs to the platform team and has only `binaries:read`; its secret is
    returned once with the `kubectl create secret` command that stores it as the
    environment's fetch-token Secret. Calling again issues a new token (rotation); revoke
    the old one on the tokens page once the Secret is replaced.

    Raises:
        PermissionDenied: the actor is not a platform admin.
    """
    if not actor.is_platform_admin:
        raise PermissionDenied("Only platform admins may create an environment's fetch token.")
    team = _platform_team_of(actor)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    with transaction.atomic():
        token, secret = token_create(
            team=team,
            name=f"fetch-{environment.name}-{stamp}",
            scopes=[Scope.BINARIES_READ],
            actor=actor,
        )
        audit_record(
            actor=actor,
            action="environment.fetch_token_create",
            obj=environment,
            after={
                "token": f"{team.name}/{token.name}",
                "scopes": token.scopes,
                "secret_name": environment.fetch_token_secret,
                "namespace": environment.namespace,
            },
        )
    return FetchToken(
        token=token,
        secret=secret,
        secret_name=environment.fetch_token_secret,
        namespace=environment.namespace,
    )


# --- deployments --------------------------------------------------------------------------


def _check_runtime(version: ImageVersion, *, allow_superseded: bool = False) -> None:
    allowed = {VersionState.APPROVED} | ({VersionState.SUPERSEDED} if allow_superseded else set())
    if version.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {
                "runtime_version": f"{version} is a {version.base_image.kind} image; "
                "deploy on a runtime image."
            }
        )
    if version.state not in allowed:
        hint = ""
        if version.superseded_by_id:
            hint = f" Use its replacement, image version {version.superseded_by_id}."
        raise ValidationError(
            {
                "runtime_version": f"Image version {version} is {version.state}; "
                f"only approved runtime versions can be released.{hint}"
            }
        )


def _check_binary(binary: BinaryVersion, service: Service) -> None:
    if binary.service_id != service.pk:
        raise ValidationError(
            {"binary_version": f"{binary} belongs to {binary.service.name}, not {service.name}."}
        )
    if binary.state != BinaryState.ACTIVE:
        raise ValidationError(
            {"binary_version": f"{binary} is {binary.state} and cannot go into a new release."}
        )


def _clean_spec(
    *, command: Any, args: Any, env: Any, ports: Any, resources: Any, replicas: Any
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        errors["command"] = "command must be a list of strings."
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        errors["args"] = "args must be a list of strings."
    env_out: list[dict[str, str]] = []
    if isinstance(env, dict):
        env = [{"name": k, "value": v} for k, v in env.items()]
    if not isinstance(env, list):
        errors["env"] = "env must be a list of {name, value} objects."
    else:
        for item in env:
            if not (
                isinstance(item, dict)
                and set(item) == {"name", "value"}
                and isinstance(item["name"], str)
                and isinstance(item["value"], str)
            ):
                errors["env"] = "env must be a list of {name, value} objects with string values."
                break
            if not _ENV_NAME.match(item["name"]):
                errors["env"] = f"env name {item['name']!r} must match [-._a-zA-Z][-._a-zA-Z0-9]*."
                break
            env_out.append({"name": item["name"], "value": item["value"]})
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    ):
        errors["ports"] = "ports must be a list of integers 1-65535."
    if (
        not isinstance(resources, dict)
        or set(resources) - set(RESOURCE_KEYS)
        or not all(isinstance(v, str) for v in resources.values())
    ):
        errors["resources"] = f"resources takes string values for {', '.join(RESOURCE_KEYS)}."
    elif problems := resource_errors(**resources):
        errors["resources"] = "; ".join(problems) + "."
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        errors["replicas"] = "replicas must be an integer >= 0."
    if errors:
        raise ValidationError(errors)
    return {
        "command": command,
        "args": args,
        "env": env_out,
        "ports": ports,
        "resources": resources,
        "replicas": replicas,
    }


def deployment_create(
    *,
    actor: Actor,
    service: Service,
    environment: Environment,
    runtime_version: ImageVersion,
    binary_version: BinaryVersion | None = None,
    mode: str = "",
    app_image: str = "",
    command: Any = None,
    args: Any = None,
    env: Any = None,
    ports: Any = None,
    resources: Any = None,
    replicas: Any = 1,
) -> Deployment:
    """Put a service into an environment (developers of the service's team)."""
    require_team_role(
        actor=actor, team=service.team, minimum=Role.DEVELOPER, what="deploy this service"
    )
    spec = _clean_spec(
        command=[] if command is None else command,
        args=["-m", "release"] if args is None else args,
        env=[] if env is None else env,
        ports=[] if ports is None else ports,
        resources={} if resources is None else resources,
        replicas=replicas,
    )
    _check_runtime(runtime_version)
    if binary_version is not None:
        _check_binary(binary_version, service)
    if app_image and not _PINNED.match(app_image):
        raise ValidationError({"app_image": "app_image must be digest-pinned (repo@sha256:…)."})
    if Deployment.objects.filter(service=service, environment=environment).exists():
        raise Conflict(
            f"{service.name} is already deployed in {environment.name}; create a release there.",
            code="duplicate",
        )
    deployment = Deployment(
        service=service,
        environment=environment,
        mode=mode or service.default_mode,
        runtime_version=runtime_version,
        binary_version=binary_version,
        app_image=app_image,
        **spec,
    )
    deployment.full_clean(validate_constraints=False)
    with transaction.atomic():
        deployment.save()
        audit_record(
            actor=actor,
            action="deployment.create",
            obj=deployment,
            after={
                "service": service.name,
                "environment": environment.name,
                "mode": deployment.mode,
                "runtime_version": runtime_version.digest,
                "binary_version": binary_version.version if binary_version else None,
            },
        )
    return deployment


# --- releases -----------------------------------------------------------------------------


def binary_download_url(binary: BinaryVersion) -> str:
    """The absolute URL nodes and init containers download the binary from."""
    path = reverse("api:binary-version-download", kwargs={"pk": binary.pk})
    return settings.PORTAL_URL.rstrip("/") + path


def manifest_input_for(
    *,
    deployment: Deployment,
    number: int,
    binary: BinaryVersion,
    runtime: ImageVersion,
) -> ManifestInput:
    """The renderer's plain values for a release of `deployment` (no I/O beyond reads)."""
    environment = deployment.environment
    service = deployment.service
    strategy = (
        environment.delivery_strategy if deployment.mode == DeploymentMode.VOLUME else "image"
    )
    resources = deployment.resources or {}
    return ManifestInput(
        service=service.name,
        team=service.team.name,
        environment=environment.name,
        namespace=environment.namespace,
        release=number,
        strategy=strategy,
        runtime_image=runtime.pull_ref,
        binary_version=binary.version,
        binary_sha256=binary.sha256,
        binary_filename=binary.filename,
        binary_download_url=binary_download_url(binary),
        binary_artifact_ref=binary.artifact_ref,
        app_image=deployment.app_image,
        command=tuple(deployment.command),
        args=tuple(deployment.args),
        env=tuple((item["name"], item["value"]) for item in deployment.env),
        ports=tuple(deployment.ports),
        replicas=deployment.replicas,
        cpu_request=resources.get("cpu_request", ""),
        memory_request=resources.get("memory_request", ""),
        cpu_limit=resources.get("cpu_limit", ""),
        memory_limit=resources.get("memory_limit", ""),
        hostpath_root=environment.hostpath_root,
        portal_url=settings.PORTAL_URL,
        arch="" if binary.arch == "noarch" else binary.arch,
        fetch_token_secret=environment.fetch_token_secret,
    )


def _render(m: ManifestInput, *, k8s_version: str, deployment: Deployment) -> tuple[str, str, dict]:
    """(manifest YAML, Dockerfile, validation) or ValidationError with every problem."""
    dockerfile = ""
    manifest = ""
    try:
        if m.strategy == "image":
            dockerfile = render_app_dockerfile(
                m.runtime_image, m.binary_filename, m.command, m.args
            )
            if not m.app_image:
                return (
                    "",
                    dockerfile,
                    {
                        "valid": True,
                        "errors": [],
                        "k8s_version_used": "",
                        "note": "Image mode: build this Dockerfile and set the deployment's "
                        "app_image to get a Deployment manifest.",
                    },
                )
        manifest = render_deployment(m, k8s_version=k8s_version)
    except ManifestError as exc:
        raise ValidationError({"manifest": list(exc.errors)}) from exc
    result = validate_manifest(manifest, k8s_version)
    if not result.valid:
        raise ValidationError(
            {
                "manifest": [
                    f"Kubernetes {result.k8s_version_used} strict validation failed: "
                    + "; ".join(result.errors)
                ]
            }
        )
    return (
        manifest,
        dockerfile,
        {
            "valid": True,
            "errors": [],
            "k8s_version_used": result.k8s_version_used,
        },
    )


def _check_artifact(binary: BinaryVersion, deployment: Deployment) -> None:
    """An imageVolume release mounts the binary's OCI artifact: refuse one without it.

    Environments below Kubernetes 1.35 are left to the renderer, whose message (image
    volumes need 1.35) is the one that helps there.
    """
    environment = deployment.environment
    if (
        deployment.mode != DeploymentMode.VOLUME
        or environment.delivery_strategy != DeliveryStrategy.IMAGE_VOLUME
        or binary.artifact_ref
    ):
        return
    match = _K8S_MINOR.match(environment.k8s_version)
    if match is None or (int(match.group(1)), int(match.group(2))) < IMAGE_VOLUME_MIN_K8S:
        return
    raise ValidationError(
        {
            "binary_version": (
                f"{binary} has no OCI artifact (binary_artifact_ref), and environment "
                f"{environment.name} delivers binaries as image volumes: push it as an OCI "
                f'artifact first: POST /api/v1/binaries/{binary.pk}/artifact/ (or "Push as OCI '
                f'artifact" on the service page), wait for the job, then create the release again.'
            )
        }
    )


def release_create(
    *,
    actor: Actor,
    deployment: Deployment,
    binary_version: BinaryVersion | None = None,
    runtime_version: ImageVersion | None = None,
    rollback_of: Release | None = None,
) -> Release:
    """Render, validate and store the next release of `deployment`.

    The binary and runtime versions default to the deployment's current ones; the new
    tuple becomes the deployment's current one. A yanked or purged binary and a runtime
    version that is not approved are refused (a rollback may return to a superseded
    runtime version, never to a revoked one). Nothing is stored when rendering or strict
    validation fails.

    Raises:
        PermissionDenied: the actor is not a developer of the service's team.
        ValidationError: refused versions, bad values, or the validator's errors.
    """
    service = deployment.service
    require_team_role(
        actor=actor, team=service.team, minimum=Role.DEVELOPER, what="release this service"
    )
    binary = binary_version or deployment.binary_version
    runtime = runtime_version or deployment.runtime_version
    if binary is None:
        raise ValidationError(
            {"binary_version": f"{deployment} has no binary version yet: give binary_version."}
        )
    _check_binary(binary, service)
    _check_runtime(runtime, allow_superseded=rollback_of is not None)
    environment = deployment.environment
    _check_artifact(binary, deployment)
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        number = (locked.releases.aggregate(n=Max("number"))["n"] or 0) + 1
        m = manifest_input_for(deployment=deployment, number=number, binary=binary, runtime=runtime)
        manifest, dockerfile, validation = _render(
            m, k8s_version=environment.k8s_version, deployment=deployment
        )
        release = Release(
            deployment=deployment,
            number=number,
            strategy=m.strategy,
            binary_version=binary,
            runtime_version=runtime,
            binary_sha256=binary.sha256,
            base_digest=runtime.digest,
            manifest_yaml=manifest,
            dockerfile=dockerfile,
            manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest() if manifest else "",
            k8s_version=environment.k8s_version,
            validation=validation,
            created_by=actor.user if actor.user is not None and actor.user.pk else None,
            created_by_token=actor.token,
            rollback_of=rollback_of,
        )
        release.full_clean(validate_constraints=False)
        release.save()
        before = {
            "binary_version": locked.binary_version_id,
            "runtime_version": locked.runtime_version_id,
        }
        Deployment.objects.filter(pk=deployment.pk).update(
            binary_version=binary, runtime_version=runtime
        )
        deployment.binary_version, deployment.runtime_version = binary, runtime
        audit_record(
            actor=actor,
            action="release.create",
            obj=release,
            before=before,
            after={
                "number": number,
                "binary_version": binary.pk,
                "runtime_version": runtime.pk,
                "binary_sha256": binary.sha256,
                "base_digest": runtime.digest,
                "manifest_sha256": release.manifest_sha256,
                "rollback_of": rollback_of.number if rollback_of else None,
            },
        )
    return release


def release_rollback(*, actor: Actor, release: Release) -> Release:
    """A new release of the same deployment with `release`'s binary and runtime versions."""
    return release_create(
        actor=actor,
        deployment=release.deployment,
        binary_version=release.binary_version,
        runtime_version=release.runtime_version,
        rollback_of=release,
    )
