"""Source builds: the SLSA v1 provenance (an in-toto Statement v1) of a compiled binary.

`source_build_jobs.source_build_succeeded` records it on the build when the output is
registered; it names the build image by digest, the source archive by sha256, the command
and the output path, so the binary can be rebuilt and checked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from ..models import BinaryVersion, SourceBuild

SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
INTOTO_STATEMENT = "https://in-toto.io/Statement/v1"


def slsa_provenance(
    *,
    build: SourceBuild,
    binary: BinaryVersion,
    job_id: int,
    started_on: datetime,
    finished_on: datetime,
) -> dict[str, Any]:
    """The in-toto Statement v1 with the SLSA v1 provenance of `binary` built by `build`."""
    image = build.build_version
    portal = settings.PORTAL_URL.rstrip("/")
    return {
        "_type": INTOTO_STATEMENT,
        "subject": [{"name": binary.filename, "digest": {"sha256": binary.sha256}}],
        "predicateType": SLSA_PREDICATE,
        "predicate": {
            "buildDefinition": {
                "buildType": f"{portal}/build-types/source-build/v1",
                "externalParameters": {
                    "command": list(build.command),
                    "output_path": build.output_path,
                    "source": {
                        "name": build.source_name,
                        "digest": {"sha256": build.source_sha256},
                    },
                    "source_sha256": build.source_sha256,
                    "build_image": image.pull_ref,
                    "service": build.service.name,
                    "version": build.version,
                    "arch": build.arch,
                },
                "internalParameters": {
                    "network": "none",
                    "workdir": "/src",
                    "source_mount": "/src (read-only)",
                    "output_mount": "/out",
                    "cache_key": build.cache_key,
                },
                "resolvedDependencies": [
                    {
                        "uri": f"oci://{image.pull_ref}",
                        "name": f"{image.base_image.name}:{image.tag}",
                        "digest": {"sha256": image.digest.removeprefix("sha256:")},
                    },
                    {
                        "uri": f"{portal}/{build.source_file}",
                        "name": build.source_name,
                        "digest": {"sha256": build.source_sha256},
                    },
                ],
            },
            "runDetails": {
                "builder": {"id": f"{portal}/builders/buildah-source-build/v1"},
                "metadata": {
                    "invocationId": str(job_id),
                    "startedOn": _rfc3339(started_on),
                    "finishedOn": _rfc3339(finished_on),
                },
            },
        },
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
