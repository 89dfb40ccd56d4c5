"""The demo data set of `manage.py seed_demo`: the standard's catalog, two teams, two users."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.dateparse import parse_datetime

from portal.actors import Actor
from portal.choices import Role
from portal.models import Membership, Team

from .models import BaseImage, Registry
from .services import base_image_apply_lifecycle, base_image_create

DEMO_PASSWORD = "portal-demo"  # noqa: S105 - documented demo login for `make run`


@dataclass(frozen=True)
class DemoImage:
    """One catalog entry of the demo set."""

    name: str
    kind: str
    os_family: str
    os_version: str
    toolchain: str
    description: str
    replacement: str = ""


DEMO_IMAGES = (
    # Order matters: replacements first.
    DemoImage(
        "runtime/debian",
        "runtime",
        "debian",
        "12",
        "",
        "Debian 12 minbase with ca-certificates, tzdata and locales; TZ/LANG/LC_ALL set.",
    ),
    DemoImage(
        "runtime/debian-11",
        "runtime",
        "debian",
        "11",
        "",
        "Debian 11 (bullseye) minbase, end of life 2026-08-31: services on it migrate to "
        "runtime/debian (Debian 12).",
        replacement="runtime/debian",
    ),
    DemoImage(
        "build/gcc",
        "build",
        "debian",
        "12",
        "gcc 12",
        "Debian 12 with build-essential: C/C++ builds, static or against glibc 2.36.",
    ),
    DemoImage(
        "build/golang-debian",
        "build",
        "debian",
        "12",
        "go 1.19",
        "Debian 12 with golang-go: the supported replacement of the CentOS 7 Go image.",
    ),
    DemoImage(
        "runtime/openeuler",
        "runtime",
        "openeuler",
        "22.03",
        "",
        "openEuler 22.03 LTS runtime, for services moving to a domestic OS.",
    ),
    DemoImage(
        "build/golang",
        "build",
        "centos",
        "7",
        "go 1.x",
        "The standard's golang:1.x.x-centos-7 build image (gcc, curl, strace…).",
        replacement="build/golang-debian",
    ),
    DemoImage(
        "runtime/centos",
        "runtime",
        "centos",
        "7",
        "",
        "The standard's CentOS 7 runtime with yum mirrors, TZ and LANG.",
        replacement="runtime/debian",
    ),
    DemoImage(
        "runtime/alpine",
        "runtime",
        "alpine",
        "3.20",
        "",
        "Alpine Linux: restricted by the standard.",
    ),
    DemoImage(
        "scratch", "runtime", "none", "", "", "The empty image: only for static C/C++ binaries."
    ),
)


def seed_demo() -> dict[str, int]:
    """Create what is missing of the demo set; never duplicates, never overwrites."""
    actor = Actor.system_actor("seed_demo")
    created = {"teams": 0, "users": 0, "images": 0}
    with transaction.atomic():
        platform, new = Team.objects.get_or_create(
            name="platform", defaults={"display_name": "Platform team", "is_platform": True}
        )
        created["teams"] += new
        payments, new = Team.objects.get_or_create(
            name="payments", defaults={"display_name": "Payments service team"}
        )
        created["teams"] += new
        users = get_user_model().objects
        for username, team, role in (
            ("platform-admin", platform, Role.PLATFORM_ADMIN),
            ("payments-lead", payments, Role.MAINTAINER),  # every role can be tried
            ("payments-dev", payments, Role.DEVELOPER),
        ):
            user = users.filter(username=username).first()
            if user is None:
                user = users.create_user(username=username, password=DEMO_PASSWORD)
                created["users"] += 1
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
        registry, _ = Registry.objects.get_or_create(
            name="local",
            defaults={
                "url": settings.PORTAL_DEFAULT_REGISTRY_URL,
                "tls_verify": settings.PORTAL_REGISTRY_TLS_VERIFY,
                "is_default": True,
            },
        )
        for spec in DEMO_IMAGES:
            if BaseImage.objects.filter(name=spec.name).exists():
                continue
            replacement = BaseImage.objects.get(name=spec.replacement) if spec.replacement else None
            base_image_create(
                actor=actor,
                name=spec.name,
                kind=spec.kind,
                os_family=spec.os_family,
                os_version=spec.os_version,
                toolchain=spec.toolchain,
                description=spec.description,
                owner_team=platform,
                registry=None if spec.os_family == "none" else registry,
                replacement=replacement,
            )
            created["images"] += 1
        for image in BaseImage.objects.all():
            base_image_apply_lifecycle(image=image, actor=actor)
    return created


# --- demo bootstraps: `make run` builds real images into the local registry on first start ------


@dataclass(frozen=True)
class DemoBuild:
    """One image `make run` bootstraps (Debian 12 minbase plus packages)."""

    image: str
    tag: str
    packages: tuple[str, ...]
    suite: str = "bookworm"

    @property
    def recipe(self) -> str:
        """The bootstrap recipe (YAML)."""
        return yaml.safe_dump(
            {"suite": self.suite, "variant": "minbase", "packages": list(self.packages)},
            sort_keys=False,
        )


_COMMON = ("ca-certificates", "tzdata", "locales")
DEMO_BUILDS = (
    DemoBuild("runtime/debian", "12", _COMMON),
    # The OS-migration demo (issue 10): the EOL Debian 11 the demo's older services run on.
    DemoBuild("runtime/debian-11", "11", _COMMON, suite="bullseye"),
    DemoBuild("build/gcc", "12", (*_COMMON, "build-essential")),
    # `build/golang` is the standard's deprecated CentOS 7 image; Go on Debian is this one.
    DemoBuild("build/golang-debian", "1.19", (*_COMMON, "golang-go")),
)


def demo_builds_start(actor: Actor | None = None) -> list[tuple[str, Any, str]]:
    """Start a bootstrap job for each demo image that has no version of its tag yet.

    Idempotent: an image with a version of the tag is skipped; a build already queued or
    running is returned as is (its idempotency key). Returns (reference, job or None, what).
    """
    from portal.jobs import job_create

    from .models import ImageVersion
    from .services import BUILD_JOB_KIND, build_idempotency_key

    actor = actor or Actor.system_actor("make run")
    started: list[tuple[str, Any, str]] = []
    for build in DEMO_BUILDS:
        reference = f"{build.image}:{build.tag}"
        image = BaseImage.objects.filter(name=build.image).select_related("owner_team").first()
        if image is None or image.registry_id is None:
            started.append((reference, None, "not in the catalog (run seed_demo)"))
            continue
        versions = ImageVersion.objects.filter(base_image=image)
        if any(build.tag == v.tag or build.tag in v.tags for v in versions):
            started.append((reference, None, "already built"))
            continue
        job, created = job_create(
            kind=BUILD_JOB_KIND,
            actor=actor,
            params={
                "image_id": image.pk,
                "tag": build.tag,
                "recipe_kind": "bootstrap",
                "recipe": build.recipe,
                "publish": True,
                "source": "make run (demo bootstrap)",
            },
            target=image,
            team=image.owner_team,
            idempotency_key=build_idempotency_key(build.image, build.tag),
        )
        started.append((reference, job, "started" if created else "already running"))
    return started


# --- the scanning demo (issue 9): advisories, scans, a candidate the gate blocks ---------------

DEMO_ADVISORIES_DIR = settings.BASE_DIR / "images" / "data" / "demo-advisories"
"""FICTIONAL OSV records (see its README) that make the demo show findings without a download."""

DEMO_ADVISORY_IDS = tuple(sorted(path.stem for path in DEMO_ADVISORIES_DIR.glob("*.json")))

# A new tag of the runtime image whose candidate contains zlib 1:1.2.13.dfsg-1+deb12u1, below
# the fix of the demo's Critical CVE-2026-99901: the gate keeps it in `scanning`, blocked.
DEMO_REQUEST = DemoBuild("runtime/debian", "12-curl", (*_COMMON, "curl"))
DEMO_REQUEST_JUSTIFICATION = (
    "[demo] The Debian 12 runtime with curl for health checks. Started by `make run` so the "
    "publish gate has a candidate to judge: its scan finds CVE-2026-99901 (zlib, Critical, "
    "fix available), so it stays blocked until it is rebuilt with the fix or waived."
)
DEMO_REVIEWER = "platform-admin"


def demo_advisories_import(actor: Actor | None = None) -> tuple[Any, str]:
    """Import the demo advisories as a visible `images.advisory_import` job, once.

    Skipped when every demo record is already in the database at its file's `modified` (the
    import is idempotent anyway; this keeps later starts from adding a job that changes
    nothing). Returns (job or None, what happened).
    """
    from .models import Advisory

    wanted = {
        path.stem: parse_datetime(json.loads(path.read_text())["modified"])
        for path in DEMO_ADVISORIES_DIR.glob("*.json")
    }
    present = dict(Advisory.objects.filter(osv_id__in=wanted).values_list("osv_id", "modified"))
    if present == wanted:  # same ids, same `modified`: an edited file is imported again
        return None, f"all {len(DEMO_ADVISORY_IDS)} demo advisories already imported"
    from .services.advisories import advisory_import_start

    job = advisory_import_start(
        actor=actor or Actor.system_actor("make run"), path=str(DEMO_ADVISORIES_DIR)
    )
    return job, f"importing {DEMO_ADVISORIES_DIR.relative_to(settings.BASE_DIR)}"


def demo_scans_start(actor: Actor | None = None) -> list[tuple[str, Any, str]]:
    """Scan the demo catalog's versions that were never scanned (found by a registry sync, or
    built before the scanner existed). New builds are scanned by the build job itself.
    Returns (reference, job or None, what) per version.
    """
    from .choices import ScanState
    from .models import ImageVersion

    versions = list(
        ImageVersion.objects.filter(
            base_image__name__in=[spec.name for spec in DEMO_IMAGES],
            scan_state=ScanState.UNSCANNED,
        )
        .select_related("base_image")
        .order_by("pk")
    )
    if not versions:
        return []
    from .services.scans import image_version_scan_start

    actor = actor or Actor.system_actor("make run")
    started: list[tuple[str, Any, str]] = []
    for version in versions:
        reference = f"{version.base_image.name}:{version.tag}"
        job = image_version_scan_start(version_id=version.pk, actor=actor)
        started.append((reference, job, "scan started"))
    return started


def demo_request_start() -> tuple[str, Any, str]:
    """Request, submit and approve `runtime/debian:12-curl` once (the build job starts).

    The request is the portal's own (system actor, platform team); `platform-admin` approves
    it, as a reviewer would. Returns (reference, job or None, what).
    """
    return _demo_request(DEMO_REQUEST, DEMO_REQUEST_JUSTIFICATION)


def _demo_request(build: DemoBuild, justification: str) -> tuple[str, Any, str]:
    from .models import ImageRequest
    from .services import image_request_approve, image_request_create

    reference = f"{build.image}:{build.tag}"
    existing = ImageRequest.objects.filter(name=build.image, tag=build.tag).order_by("-pk").first()
    if existing is not None:
        return reference, None, f"request #{existing.pk} is {existing.state}"
    reviewer = get_user_model().objects.filter(username=DEMO_REVIEWER).first()
    if reviewer is None or not BaseImage.objects.filter(name=build.image).exists():
        return reference, None, "not requested (run seed_demo first)"
    request = image_request_create(
        actor=Actor.system_actor("make run"),
        name=build.image,
        tag=build.tag,
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="bootstrap",
        recipe=build.recipe,
        justification=justification,
        submit=True,
    )
    request, job = image_request_approve(
        request=request, actor=Actor(user=reviewer), comment="[demo] approved by make run"
    )
    return reference, job, f"request #{request.pk} approved, build started"


# --- the rebase and migration demo (issue 10) -----------------------------------------------

# A second runtime/debian version (one more package): its publish supersedes runtime/debian:12,
# so every demo deployment on 12 gets a rebase plan (a canary first). Requested only once the
# demo services run on 12 (`deployments.demo` starts it), else they would be deployed on it.
DEMO_REBASE_REQUEST = DemoBuild("runtime/debian", "12-p1", (*_COMMON, "netbase"))
DEMO_REBASE_JUSTIFICATION = (
    "[demo] runtime/debian:12 rebuilt with netbase (/etc/services, /etc/protocols). Started by "
    "`make run`: publishing it supersedes runtime/debian:12, which drafts a rebase plan for the "
    "demo deployments on 12 (Plans), rolled out canary first."
)
# The demo versions the demo itself deploys on: published even though the FICTIONAL demo
# advisories block them (an image_version waiver per finding, approved by platform-admin, so
# `runtime/debian:12-curl` stays the candidate the gate blocks).
DEMO_WAIVED = {"runtime/debian": ("12", "12-p1")}
DEMO_WAIVER_DAYS = 90


def demo_rebase_request_start() -> tuple[str, Any, str]:
    """Request `runtime/debian:12-p1` once (see DEMO_REBASE_REQUEST)."""
    return _demo_request(DEMO_REBASE_REQUEST, DEMO_REBASE_JUSTIFICATION)


def demo_versions_publish(actor: Actor | None = None) -> list[str]:
    """Publish the demo's own runtime versions (DEMO_WAIVED) that the gate blocks only for
    FICTIONAL demo advisories: an image_version waiver per blocking finding (requested by the
    portal, approved by `platform-admin`), then the publish. Anything else blocking them, or
    a version not scanned yet, is left as it is. Returns one line per version published.
    """
    import datetime as dt

    from django.utils import timezone

    from portal.api.errors import Conflict

    from .choices import ScanState, VersionState, VexStatus, WaiverScope
    from .models import ImageVersion
    from .services import image_version_publish
    from .services.gate import GateBlocked, image_version_gate
    from .services.publish import PublishRegistryError
    from .services.waivers import waiver_approve, waiver_request

    actor = actor or Actor.system_actor("make run")
    reviewer = get_user_model().objects.filter(username=DEMO_REVIEWER).first()
    if reviewer is None:
        return []
    done: list[str] = []
    for name, tags in DEMO_WAIVED.items():
        versions = ImageVersion.objects.filter(
            base_image__name=name,
            state=VersionState.CANDIDATE,
            scan_state=ScanState.SCANNED,
            tag__in=tags,
        ).select_related("base_image", "registry")
        for version in versions:
            result = image_version_gate(version)
            if result.clean:
                image_version_publish(version=version, actor=actor)
                done.append(f"{name}:{version.tag} published (gate clean)")
                continue
            if not result.blocking or any(
                b.advisory not in DEMO_ADVISORY_IDS for b in result.blocking
            ):
                continue  # a real advisory blocks it: the demo does not waive that
            expires = timezone.now() + dt.timedelta(days=DEMO_WAIVER_DAYS)
            for advisory, package in sorted({(b.advisory, b.package) for b in result.blocking}):
                try:
                    waiver = waiver_request(
                        actor=actor,
                        advisory_ref=advisory,
                        scope=WaiverScope.IMAGE_VERSION,
                        image_version_id=version.pk,
                        package_name=package,
                        status=VexStatus.AFFECTED,
                        action_statement=f"[demo] {advisory} is a FICTIONAL demo advisory; "
                        f"{name}:{version.tag} is published so the rebase and migration demo "
                        "has something to run on.",
                        expires_at=expires,
                    )
                except Conflict:  # waived on an earlier round whose publish did not go through
                    continue
                waiver_approve(
                    waiver_id=waiver.pk, actor=Actor(user=reviewer), note="[demo] make run"
                )
            try:
                image_version_publish(version=version, actor=actor)
            except (GateBlocked, PublishRegistryError) as exc:
                done.append(f"{name}:{version.tag} not published yet: {exc}")
                continue
            done.append(f"{name}:{version.tag} published (demo advisories waived for this version)")
    return done
