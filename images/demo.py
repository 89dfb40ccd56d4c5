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

    @property
    def recipe(self) -> str:
        """The bootstrap recipe (YAML)."""
        return yaml.safe_dump(
            {"suite": "bookworm", "variant": "minbase", "packages": list(self.packages)},
            sort_keys=False,
        )


_COMMON = ("ca-certificates", "tzdata", "locales")
DEMO_BUILDS = (
    DemoBuild("runtime/debian", "12", _COMMON),
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
    from .models import ImageRequest
    from .services import image_request_approve, image_request_create

    reference = f"{DEMO_REQUEST.image}:{DEMO_REQUEST.tag}"
    existing = (
        ImageRequest.objects.filter(name=DEMO_REQUEST.image, tag=DEMO_REQUEST.tag)
        .order_by("-pk")
        .first()
    )
    if existing is not None:
        return reference, None, f"request #{existing.pk} is {existing.state}"
    reviewer = get_user_model().objects.filter(username=DEMO_REVIEWER).first()
    if reviewer is None or not BaseImage.objects.filter(name=DEMO_REQUEST.image).exists():
        return reference, None, "not requested (run seed_demo first)"
    request = image_request_create(
        actor=Actor.system_actor("make run"),
        name=DEMO_REQUEST.image,
        tag=DEMO_REQUEST.tag,
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="bootstrap",
        recipe=DEMO_REQUEST.recipe,
        justification=DEMO_REQUEST_JUSTIFICATION,
        submit=True,
    )
    request, job = image_request_approve(
        request=request, actor=Actor(user=reviewer), comment="[demo] approved by make run"
    )
    return reference, job, f"request #{request.pk} approved, build started"


def demo_runtime_waive_and_publish(version: Any) -> str:
    """Publish the scanned demo runtime the demo deploys on, through a reviewed waiver.

    The demo advisories make every demo image fail the gate (CVE-2026-99901, Critical, fix
    available). So a new user also sees the way out: the platform team requests a waiver
    scoped to this one image version ("affected", with an action statement, 30 days) and
    `platform-admin` approves it (four eyes: the requester is the portal itself); then the
    version is published. The `12-curl` candidate is another version, so it stays blocked.
    Only the demo's own advisories are waived; anything else keeps the version a candidate.
    """
    import datetime as dt

    from django.utils import timezone

    from .choices import VersionState
    from .services import image_version_publish
    from .services.gate import image_version_gate
    from .services.waivers import waiver_approve, waiver_request

    if version.state != VersionState.CANDIDATE:
        return f"{version} is {version.state}"
    reviewer = get_user_model().objects.filter(username=DEMO_REVIEWER).first()
    if reviewer is None:
        return "not published (run seed_demo first)"
    gate = image_version_gate(version)
    blocking = {b.advisory for b in gate.blocking}
    if gate.verdict == "unscanned" or blocking - set(DEMO_ADVISORY_IDS):
        return f"not published: {gate.reason}"
    for advisory in sorted(blocking):
        waiver = waiver_request(
            actor=Actor.system_actor("make run"),
            advisory_ref=advisory,
            scope="image_version",
            image_version_id=version.pk,
            status="affected",
            action_statement=(
                "[demo] Rebuild runtime/debian:12 once Debian ships zlib 1:1.2.13.dfsg-1+deb12u2; "
                "until then the demo services keep running on this version."
            ),
            expires_at=timezone.now() + dt.timedelta(days=30),
        )
        waiver_approve(
            waiver_id=waiver.pk, actor=Actor(user=reviewer), note="[demo] approved by make run"
        )
    image_version_publish(version=version, actor=Actor(user=reviewer))
    return f"published {version} with {len(blocking)} demo waiver(s)"
