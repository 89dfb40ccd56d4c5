"""The demo advisories (images/data/demo-advisories/): valid OSV 1.6, clearly fictional, and the
story they tell holds against what a bookworm minbase bootstrap really installs.

The story is checked against the bootstrap the tests cache (`/var/tmp/bip-test-cache`, the
same packages as the demo's runtime/debian:12 minus ca-certificates/openssl) with the real
`dpkg --compare-versions`, so it is useful before the importer and matcher are merged.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from datetime import datetime
from pathlib import Path

import pytest
from cvss import CVSS3
from django.conf import settings

from tests.fixtures.registry import CACHE_DIR

DEMO_DIR = Path(settings.BASE_DIR) / "images" / "data" / "demo-advisories"
FILES = sorted(DEMO_DIR.glob("*.json"))
RECORDS = {path.name: json.loads(path.read_text()) for path in FILES}
BY_ID = {record["id"]: record for record in RECORDS.values()}
DEMO_ID = re.compile(r"^(DSA-99\d\d-1|DEBIAN-CVE-2026-999\d\d|CVE-2026-999\d\d)\Z")
ECOSYSTEM_WITH_RELEASE = re.compile(r"^Debian:\d+\Z")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
EVENT_KEYS = {"introduced", "fixed", "last_affected", "limit"}


def test_the_directory_holds_the_whole_story() -> None:
    assert len(FILES) == 6
    assert (DEMO_DIR / "README.md").read_text().count("FICTIONAL") >= 1
    assert set(BY_ID) == {
        "DSA-9901-1",
        "DEBIAN-CVE-2026-99901",
        "DEBIAN-CVE-2026-99902",
        "DSA-9903-1",
        "DEBIAN-CVE-2026-99904",
        "DEBIAN-CVE-2026-99905",
    }


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_each_file_is_a_valid_fictional_osv_record(name: str) -> None:
    record = RECORDS[name]
    assert name == f"{record['id']}.json"
    assert record["schema_version"] == "1.6.0"
    assert DEMO_ID.match(record["id"]), record["id"]
    for key in ("modified", "published"):
        assert RFC3339_UTC.match(record[key]), record[key]
        datetime.fromisoformat(record[key])
    assert record["summary"].startswith("[demo] ")
    assert record["details"].startswith("[demo] FICTIONAL")
    for alias in (*record.get("aliases", []), *record.get("upstream", [])):
        assert DEMO_ID.match(alias), alias
    for related in record.get("related", []):
        assert related in BY_ID, related
    (severity,) = record["severity"]
    assert severity["type"] == "CVSS_V3"
    CVSS3(severity["score"])  # raises on an invalid vector
    assert all(ref["url"].startswith("https://portal.invalid/") for ref in record["references"])
    assert record["affected"]
    for affected in record["affected"]:
        package = affected["package"]
        assert ECOSYSTEM_WITH_RELEASE.match(package["ecosystem"])
        assert package["name"] and package["purl"] == (
            f"pkg:deb/debian/{package['name']}?arch=source"
        )
        (version_range,) = affected["ranges"]
        assert version_range["type"] == "ECOSYSTEM"
        events = version_range["events"]
        assert all(len(event) == 1 and set(event) <= EVENT_KEYS for event in events)
        assert events[0] == {"introduced": "0"}
        kinds = {key for event in events for key in event}
        assert not {"fixed", "last_affected"} <= kinds  # the schema forbids both in one range


def _rating(record_id: str) -> str:
    vector = BY_ID[record_id]["severity"][0]["score"]
    return str(CVSS3(vector).severities()[0])


def _fixed(record_id: str) -> str | None:
    (affected,) = BY_ID[record_id]["affected"]
    fixed = [e["fixed"] for e in affected["ranges"][0]["events"] if "fixed" in e]
    return fixed[0] if fixed else None


def _package(record_id: str) -> tuple[str, str]:
    (affected,) = BY_ID[record_id]["affected"]
    return affected["package"]["ecosystem"], affected["package"]["name"]


def test_the_severities_and_the_cve_they_share() -> None:
    assert _rating("DSA-9901-1") == _rating("DEBIAN-CVE-2026-99901") == "Critical"
    assert _rating("DEBIAN-CVE-2026-99902") == "High"
    assert _rating("DSA-9903-1") == "Medium"
    assert _rating("DEBIAN-CVE-2026-99904") == "Low"
    # Searching CVE-2026-99901 finds both records (DSA upstream, DEBIAN-CVE alias).
    assert "CVE-2026-99901" in BY_ID["DSA-9901-1"]["upstream"]
    assert "CVE-2026-99901" in BY_ID["DEBIAN-CVE-2026-99901"]["aliases"]
    assert _fixed("DSA-9901-1") == _fixed("DEBIAN-CVE-2026-99901")
    assert _fixed("DEBIAN-CVE-2026-99902") is None
    assert _package("DEBIAN-CVE-2026-99905")[0] == "Debian:11"


def _installed_by_source() -> dict[str, dict[str, str]]:
    """{source name: {binary name: version}} from the cached bootstrap's dpkg status."""
    tars = sorted(CACHE_DIR.glob("bookworm-minbase-*.tar")) if CACHE_DIR.is_dir() else []
    if not tars:
        pytest.skip(f"no cached bookworm bootstrap in {CACHE_DIR} (run the registry tests once)")
    if not shutil.which("dpkg"):
        pytest.skip("needs dpkg")
    with tarfile.open(tars[0]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("var/lib/dpkg/status"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        status = extracted.read().decode()
    packages: dict[str, dict[str, str]] = {}
    for stanza in status.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if re.match(r"^[A-Z][\w-]*: ", line)
        )
        if "install ok installed" not in fields.get("Status", ""):
            continue
        # dpkg's rule: no Source → the binary's own name; "src (ver)" → src.
        source = fields.get("Source", fields["Package"]).split(" ")[0]
        packages.setdefault(source, {})[fields["Package"]] = fields["Version"]
    return packages


def _dpkg(a: str, op: str, b: str) -> bool:
    dpkg = shutil.which("dpkg")
    assert dpkg is not None
    return subprocess.run([dpkg, "--compare-versions", a, op, b], check=False).returncode == 0  # noqa: S603


def test_the_story_holds_against_the_real_bootstrap() -> None:
    installed = _installed_by_source()
    # (a) Critical, fixable: every binary of zlib (zlib1g) is below the fixed version.
    ecosystem, name = _package("DSA-9901-1")
    assert (ecosystem, name) == ("Debian:12", "zlib")
    assert "zlib" not in installed.get("zlib", {}), "the trap: only the binary zlib1g is installed"
    fixed = _fixed("DSA-9901-1")
    assert fixed is not None
    assert installed["zlib"]
    for binary, version in installed["zlib"].items():
        assert _dpkg(version, "lt", fixed), (binary, version, fixed)
    # (b) High, unfixed: perl is installed (perl-base ← perl), so every version matches.
    assert "perl-base" in installed[_package("DEBIAN-CVE-2026-99902")[1]]
    # (c) Medium/Low, fixed below what is installed: no finding.
    for record_id in ("DSA-9903-1", "DEBIAN-CVE-2026-99904"):
        fixed = _fixed(record_id)
        assert fixed is not None
        binaries = installed[_package(record_id)[1]]
        assert binaries
        for binary, version in binaries.items():
            assert _dpkg(version, "gt", fixed), (record_id, binary, version, fixed)
    # (d) Debian:11 only: tar is installed in the Debian 12 image, so only the release
    # keeps it from matching.
    assert "tar" in installed[_package("DEBIAN-CVE-2026-99905")[1]]


def test_the_demo_directory_is_an_allowed_import_root() -> None:
    roots = [Path(root).resolve() for root in settings.PORTAL_ADVISORY_IMPORT_ROOTS]
    assert DEMO_DIR.resolve() in roots
    assert (Path(settings.VAR_DIR) / "advisories").resolve() in roots
