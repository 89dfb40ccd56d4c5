"""The demo data set of `manage.py seed_demo`: the standard's catalog, two teams, two users."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from deployments.choices import Role
from deployments.models import Membership, Team
from portal.actors import Actor

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
