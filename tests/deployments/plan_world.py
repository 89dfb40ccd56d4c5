"""Shared builders of the plan tests: an image line with versions, ABI facts, deployments in
dev/staging/prod, a verdict of set containment standing in for the compat module, and running
the wave jobs the way a worker does (`job_execute`)."""

from __future__ import annotations

import hashlib
from typing import Any

from deployments.models import Deployment, Plan
from images.models import ImageAbi, ImageVersion, Sbom
from portal.jobs import job_execute
from portal.models import Job
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import BaseImageFactory, ImageVersionFactory

GLIBC_236 = [f"GLIBC_2.{n}" for n in range(2, 37)]


def with_abi(version: ImageVersion, libc_version: str = "2.36", versions: list[str] | None = None):
    """Give `version` a scan with ImageAbi facts: libc.so.6 defining `versions`."""
    sbom = Sbom.objects.create(
        digest=version.digest, subject="image", blob_name=f"s/{version.pk}", blob_sha256="0"
    )
    ImageAbi.objects.create(
        sbom=sbom,
        libc_kind="glibc",
        libc_version=libc_version,
        loader_paths=["/lib64/ld-linux-x86-64.so.2"],
        search_path=["/lib/x86_64-linux-gnu"],
        libraries=[
            {
                "path": "/lib/x86_64-linux-gnu/libc.so.6",
                "soname": "libc.so.6",
                "versions": versions if versions is not None else GLIBC_236,
            }
        ],
    )
    ImageVersion.objects.filter(pk=version.pk).update(sbom=sbom)
    version.refresh_from_db()
    return version


def line(name: str = "runtime/debian", n: int = 2) -> list[ImageVersion]:
    """`n` versions of one runtime image, oldest first; only the newest is approved."""
    image = BaseImageFactory(name=name)
    versions = [
        ImageVersionFactory(base_image=image, tag=f"12.{i}", state="approved") for i in range(n)
    ]
    for v in versions[:-1]:
        ImageVersion.objects.filter(pk=v.pk).update(state="superseded")
    return versions


def deployments_on(
    runtime: ImageVersion,
    team: Any,
    layout: dict[str, int],
    *,
    mode: str = "volume",
    prefix: str = "svc",
    version_needs: list[list[str]] | None = None,
) -> list[Deployment]:
    """Deployments of new services of `team` on `runtime`: layout = {environment: count}."""
    out = []
    for env_name, count in layout.items():
        env = EnvironmentFactory(name=env_name, namespace=f"apps-{env_name}")
        for i in range(count):
            service = ServiceFactory(name=f"{prefix}-{env_name}-{i}", team=team)
            binary = BinaryVersionFactory(
                service=service,
                version_needs=version_needs or [["libc.so.6", "GLIBC_2.34"]],
            )
            out.append(
                DeploymentFactory(
                    service=service,
                    environment=env,
                    runtime_version=runtime,
                    binary_version=binary,
                    mode=mode,
                    app_image=(
                        "127.0.0.1:5000/apps/x@sha256:" + hashlib.sha256(b"a").hexdigest()
                        if mode == "image"
                        else ""
                    ),
                )
            )
    return out


def run_wave_jobs(plan: Plan) -> list[str]:
    """Run every queued wave job of `plan` as a worker would; their end states."""
    states = []
    for job in Job.objects.filter(
        kind="deployments.plan_wave", state="queued", target_id=str(plan.pk)
    ).order_by("pk"):
        states.append(job_execute(job.pk))
    return states
