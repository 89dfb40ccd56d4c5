"""The demo's story end to end, with the real parts: the demo advisories imported by the
importer's job, a real bookworm image scanned by the scanner's job (real syft), and the
findings the matcher leaves — exactly the ones the demo README promises.
"""

from __future__ import annotations

from typing import Any

import pytest

from images.demo import DEMO_ADVISORIES_DIR
from images.models import Advisory, Finding, ImageVersion, Package, Registry
from images.services.advisories import advisory_import_start
from images.services.scans import image_version_scan_start
from portal.actors import Actor
from portal.jobs import job_execute
from portal.models import Job
from tests.images.factories import BaseImageFactory, ImageVersionFactory, TeamFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run(job: Job) -> None:
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error


def test_the_demo_advisories_give_the_promised_findings_on_a_real_bookworm_image(
    request: pytest.FixtureRequest, oci_registry: Any
) -> None:
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
    # every binary package of source perl High and unfixed (perl-base in a minbase; this image's
    # locale brings perl, libperl5.36 and perl-modules-5.36 too); glibc/systemd fixed below,
    # tar only in Debian 11.
    from_perl = set(
        Package.objects.filter(sboms=version.sbom_id, source_name="perl").values_list(
            "name", flat=True
        )
    )
    assert "perl-base" in from_perl
    assert set(found) == {
        ("DSA-9901-1", "zlib1g"),
        ("DEBIAN-CVE-2026-99901", "zlib1g"),
        *(("DEBIAN-CVE-2026-99902", name) for name in from_perl),
    }
    critical = found[("DSA-9901-1", "zlib1g")]
    assert (critical.severity, critical.fix_state) == ("critical", "fixed")
    assert critical.installed_version == "1:1.2.13.dfsg-1+deb12u1"
    assert critical.fixed_version == "1:1.2.13.dfsg-1+deb12u2"
    assert found[("DEBIAN-CVE-2026-99902", "perl-base")].fix_state == "not_fixed"
