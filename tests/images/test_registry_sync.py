"""Registry sync against Debian's docker-registry with images pushed by buildah."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from images.builder import image_from_rootfs, push_image
from images.models import ImageVersion, Registry
from portal.actors import Actor
from portal.jobs import job_create, job_execute
from portal.models import Job
from tests.images.factories import BaseImageFactory, TeamFactory

pytestmark = pytest.mark.django_db


def tiny_rootfs(path: Path, content: bytes) -> Path:
    """A one-file root filesystem tar (fast to build and push)."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("etc/portal-test")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture(scope="module")
def pushed(oci_registry, buildah_config, tmp_path_factory):
    """Two tags of one repository and one of another, pushed with buildah."""
    work = tmp_path_factory.mktemp("sync")
    pushed = {}
    for repo, tag, content in (
        ("runtime/synctest", "1", b"one"),
        ("runtime/synctest", "2", b"two"),
        ("build/synctool", "1.0", b"tool"),
    ):
        local = f"localhost/{repo}:{tag}"
        image_from_rootfs(
            str(tiny_rootfs(work / f"{repo.replace('/', '_')}{tag}.tar", content)),
            tag=local,
            env={"TZ": "UTC"},
            cmd=["/bin/true"],
            labels={"test": "1"},
            config=buildah_config,
            log=lambda _line: None,
        )
        push_image(
            local,
            f"{oci_registry.host}/{repo}:{tag}",
            config=buildah_config,
            log=lambda _line: None,
        )
        pushed[(repo, tag)] = skopeo_digest(f"{oci_registry.host}/{repo}:{tag}")
    return pushed


def skopeo_digest(ref: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)["Digest"]


@pytest.fixture
def catalog(oci_registry):
    team = TeamFactory()
    registry = Registry.objects.create(name="test", url=oci_registry.url, tls_verify=False)
    runtime = BaseImageFactory(name="runtime/synctest", owner_team=team, registry=registry)
    build = BaseImageFactory(
        name="build/synctool", kind="build", owner_team=team, registry=registry
    )
    missing = BaseImageFactory(name="runtime/not-pushed", owner_team=team, registry=registry)
    return runtime, build, missing


def run_sync() -> Job:
    job, _ = job_create(kind="images.registry_sync", actor=Actor.system_actor("test"))
    job_execute(job.pk)
    job.refresh_from_db()
    return job


def test_sync_records_every_tag_with_skopeo_digests(catalog, pushed, running_registry):
    job = run_sync()
    assert job.state == "succeeded", job.error
    assert job.result == {
        "images": 3,
        "tags": 3,
        "new_versions": 3,
        "missing": ["runtime/not-pushed"],
    }
    for (repo, tag), digest in pushed.items():
        version = ImageVersion.objects.get(base_image__name=repo, tag=tag)
        assert version.digest == digest
        assert version.arch == "amd64"
        assert version.size and version.size > 0
        assert version.state == "candidate"
    assert "runtime/not-pushed: no repository" in job.log
    assert job.progress == 100


def test_sync_skips_the_staging_tags_of_builds(catalog, pushed, running_registry):
    # Builds push candidates under <tag>-candidate-<job> (M2); those are not versions' tags.
    from tests.fixtures.registry import put_image

    put_image(running_registry.url, "runtime/synctest", "9-candidate-12")
    job = run_sync()
    assert job.state == "succeeded", job.error
    assert job.result["tags"] == 3
    assert not ImageVersion.objects.filter(tag__contains="candidate").exists()
    assert all("candidate" not in t for v in ImageVersion.objects.all() for t in v.tags or [])


def test_sync_is_idempotent(catalog, pushed, running_registry):
    run_sync()
    job = run_sync()
    assert job.result["new_versions"] == 0
    assert ImageVersion.objects.count() == 3


def test_registry_down_fails_the_attempt_with_retry(catalog, running_registry, settings):
    job, _ = job_create(
        kind="images.registry_sync", actor=Actor.system_actor("test"), max_attempts=1
    )
    with running_registry.down():
        assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "test is unavailable" in job.error
    assert not ImageVersion.objects.exists()
