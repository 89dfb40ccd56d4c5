"""What the source-build and app-image tests share: the session's buildah storage and
registry as the portal's, `build/gcc:12` and `runtime/debian:12` as approved catalog versions."""

from __future__ import annotations

import pytest

from images.models import BaseImage, ImageVersion, Registry
from tests.fixtures.registry import BASE_REPOSITORY, GCC_REPOSITORY


def catalog_version(
    registry: Registry, team, name: str, kind: str, tag: str, digest: str
) -> ImageVersion:
    image, _ = BaseImage.objects.get_or_create(
        name=name,
        defaults={
            "kind": kind,
            "os_family": "debian",
            "os_version": "12",
            "owner_team": team,
            "registry": registry,
        },
    )
    return ImageVersion.objects.create(
        base_image=image,
        tag=tag,
        tags=[tag],
        digest=digest,
        registry=registry,
        arch="amd64",
        state="approved",
    )


@pytest.fixture
def build_env(
    settings,
    buildah_config,
    running_registry,
    binary_store_dir,
    tmp_path,
    gcc_build_image,
    debian_base_image,
    platform_team,
):
    settings.PORTAL_BUILDAH_ROOT = buildah_config.storage_root
    settings.PORTAL_BUILDAH_RUNROOT = buildah_config.run_root
    settings.PORTAL_BUILD_WORK_DIR = str(tmp_path / "work")
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 1
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 0.1
    settings.JOB_HEARTBEAT_SECONDS = 3600  # the test transaction holds the job row
    registry = Registry.objects.create(
        name="test", url=running_registry.url, tls_verify=False, is_default=True
    )
    return {
        "registry": registry,
        "oci": running_registry,
        "buildah": buildah_config,
        "gcc": catalog_version(
            registry, platform_team, GCC_REPOSITORY, "build", "12", gcc_build_image[1]
        ),
        "runtime": catalog_version(
            registry, platform_team, BASE_REPOSITORY, "runtime", "12", debian_base_image[1]
        ),
    }
