"""The demo's story end to end, with the real parts: the demo advisories imported by the
importer's job, a real bookworm image scanned by the scanner's job (real syft), and the
findings the matcher leaves — exactly the ones the demo README promises.

It needs the importer and the scanner of issue 9 (written in parallel with the demo); until
they are in the tree it skips, and test_demo_advisories.py checks the same story against the
bootstrap's dpkg status with `dpkg --compare-versions`.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from images.demo import DEMO_ADVISORIES_DIR
from images.models import Advisory, Finding, ImageVersion, Registry
from portal.actors import Actor
from portal.jobs import job_execute
from portal.models import Job
from tests.images.factories import BaseImageFactory, ImageVersionFactory, TeamFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _seam(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"needs {module}.{name} (issue 9's importer and scanner)")


def _run(job: Job) -> None:
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error


def test_the_demo_advisories_give_the_promised_findings_on_a_real_bookworm_image(
    request: pytest.FixtureRequest, oci_registry: Any
) -> None:
    advisory_import_start = _seam("images.services.advisories", "advisory_import_start")
    image_version_scan_start = _seam("images.services.scans", "image_version_scan_start")
    _reference, digest = request.getfixturevalue("debian_base_image")
    actor = Actor.system_actor("test")
    registry = Registry.objects.create(name="test", url=oci_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/debian", owner_team=TeamFactory(), registry=registry)
    version = ImageVersionFactory(
        base_image=image, registry=registry, tag="12", digest=digest, state="candidate"
    )

    _run(advisory_import_start(actor=actor, path=str(DEMO_ADVISORIES_DIR)))
    assert Advisory.objects.filter(osv_id__in=["DSA-9901-1", "DEBIAN-CVE-2026-99905"]).count() == 2
    _run(image_version_scan_start(version_id=version.pk, actor=actor))

    version = ImageVersion.objects.get(pk=version.pk)
    assert version.sbom_id is not None
    found = {
        (f.advisory.osv_id, f.package.name): f
        for f in Finding.objects.filter(
            sbom_id=version.sbom_id, resolved_at__isnull=True
        ).select_related("advisory", "package")
    }
    # Exactly the story: zlib1g (source zlib) Critical and fixable twice (DSA + DEBIAN-CVE),
    # perl-base (source perl) High and unfixed; glibc/systemd fixed below, tar only in Debian 11.
    assert set(found) == {
        ("DSA-9901-1", "zlib1g"),
        ("DEBIAN-CVE-2026-99901", "zlib1g"),
        ("DEBIAN-CVE-2026-99902", "perl-base"),
    }
    critical = found[("DSA-9901-1", "zlib1g")]
    assert (critical.severity, critical.fix_state) == ("critical", "fixed")
    assert critical.installed_version == "1:1.2.13.dfsg-1+deb12u1"
    assert critical.fixed_version == "1:1.2.13.dfsg-1+deb12u2"
    assert found[("DEBIAN-CVE-2026-99902", "perl-base")].fix_state == "not_fixed"
