"""The matcher on PostgreSQL with real OSV records (tests/fixtures/osv/matching/): the
source-vs-binary trap, epochs, `~`, last_affected, two ranges, enumerated versions, another
release, another distro, withdrawn, unparsable versions, and reconciliation (resolve,
reopen, package gone) — plus the re-match that never runs syft."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from images.models import AffectedPackage, Finding, ImageVersion, Sbom, SbomPackage
from images.services.findings import findings_rematch, sbom_match

from .factories import ImageVersionFactory
from .matching_support import add_package, fixture_record, load, load_record, make_sbom

pytestmark = pytest.mark.django_db

DEBIAN_ALL = [
    "DEBIAN-CVE-2023-4911",
    "DSA-5380-1",
    "DSA-5724-1",
    "DEBIAN-CVE-2099-0001-no-epoch",
    "DSA-5600-1-systemd",
    "DEBIAN-CVE-2024-0002-unimportant",
    "UBUNTU-CVE-2023-4911",
    "DEBIAN-CVE-2020-0003-withdrawn",
]


def findings_of(sbom: Sbom, *, open_only: bool = True) -> dict[tuple[str, str], Finding]:
    qs = Finding.objects.filter(sbom=sbom).select_related("package", "advisory")
    if open_only:
        qs = qs.filter(resolved_at__isnull=True)
    return {(f.package.name, f.advisory.osv_id): f for f in qs}


@pytest.fixture
def debian_sbom() -> Sbom:
    for name in DEBIAN_ALL:
        load(name)
    return make_sbom(
        "Debian:12",
        [
            ("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"),
            ("libc-bin", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"),
            ("perl-base", "5.36.0-7", "perl", "5.36.0-7"),
            ("openssh-client", "1:9.2p1-2+deb12u2", "openssh", "1:9.2p1-2+deb12u2"),
            ("systemd", "252.22-1~deb12u1"),
            ("libsystemd0", "252.23-1~deb12u1", "systemd", "252.23-1~deb12u1"),
            ("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1"),
            ("bash", "5.2.15-2+b2"),
        ],
    )


def test_debian_traps(debian_sbom: Sbom) -> None:
    summary = sbom_match(sbom_id=debian_sbom.id)
    found = findings_of(debian_sbom)
    assert set(found) == {
        # source vs binary: libc6/libc-bin ← glibc, perl-base ← perl
        ("libc6", "DEBIAN-CVE-2023-4911"),
        ("libc-bin", "DEBIAN-CVE-2023-4911"),
        ("perl-base", "DSA-5380-1"),
        # epoch 1 on both sides; the record without the epoch does not match
        ("openssh-client", "DSA-5724-1"),
        # 252.22-1~deb12u1 < 252.23-1~deb12u1 (libsystemd0 at the fix is not affected)
        ("systemd", "DSA-5600-1"),
        ("zlib1g", "DEBIAN-CVE-2024-0002"),
    }
    # Not Ubuntu's glibc record (another distro), not the Debian:11 entry, not withdrawn.
    libc6 = found[("libc6", "DEBIAN-CVE-2023-4911")]
    assert libc6.matched_name == "glibc"
    assert libc6.installed_version == "2.36-9+deb12u2"
    assert libc6.fixed_version == "2.36-9+deb12u3"
    assert libc6.fix_state == "fixed"
    assert libc6.severity == "high"
    assert libc6.needs_review == ""
    # The list order's columns: the package's name copied, the ranks computed by the database.
    assert all(f.package_name == f.package.name for f in found.values())
    assert (libc6.severity_order, libc6.fix_rank) == (1, 0)  # high, fixable
    assert found[("openssh-client", "DSA-5724-1")].fixed_version == "1:9.2p1-2+deb12u3"
    assert found[("openssh-client", "DSA-5724-1")].severity == "critical"
    assert found[("systemd", "DSA-5600-1")].fixed_version == "252.23-1~deb12u1"
    zlib = found[("zlib1g", "DEBIAN-CVE-2024-0002")]
    assert (zlib.fix_state, zlib.fixed_version) == ("not_affected", "")  # urgency unimportant
    assert summary["packages"] == 8
    assert summary["open"] == 6
    assert summary["new"] == 6


def test_another_release_is_not_matched() -> None:
    load("DEBIAN-CVE-2023-4911")
    bullseye = make_sbom(
        "Debian:11",
        [
            ("libc6", "2.31-13+deb11u7", "glibc", "2.31-13+deb11u7"),  # fixed in 11
        ],
    )
    old = make_sbom("Debian:11", [("libc6", "2.31-13+deb11u6", "glibc", "2.31-13+deb11u6")])
    sbom_match(sbom_id=bullseye.id)
    sbom_match(sbom_id=old.id)
    # The Debian:12 entry (fixed 2.36-9+deb12u3) would call 2.31 affected: it must not apply.
    assert findings_of(bullseye) == {}
    assert findings_of(old)[("libc6", "DEBIAN-CVE-2023-4911")].fixed_version == "2.31-13+deb11u7"


def test_fixed_version_is_not_affected(debian_sbom: Sbom) -> None:
    sbom = make_sbom("Debian:12", [("libc6", "2.36-9+deb12u3", "glibc", "2.36-9+deb12u3")])
    sbom_match(sbom_id=sbom.id)
    assert findings_of(sbom) == {}


def test_alpine() -> None:
    load("ALPINE-CVE-2024-5535")
    load("ALPINE-CVE-2099-0004-rc")
    sbom = make_sbom(
        "Alpine:v3.20",
        [
            ("libcrypto3", "3.3.1-r0", "openssl", "3.3.1-r0"),
            ("libssl3", "3.3.1-r1", "openssl", "3.3.1-r1"),
            ("busybox", "1.36.1_rc1-r0"),
        ],
    )
    current = make_sbom("Alpine:v3.20", [("busybox", "1.36.1-r0")])
    sbom_match(sbom_id=sbom.id)
    sbom_match(sbom_id=current.id)
    found = findings_of(sbom)
    assert set(found) == {
        ("libcrypto3", "ALPINE-CVE-2024-5535"),
        ("busybox", "ALPINE-CVE-2099-0004"),
    }
    assert found[("libcrypto3", "ALPINE-CVE-2024-5535")].fixed_version == "3.3.1-r1"
    assert findings_of(current) == {}  # 1.36.1-r0 > 1.36.1_rc2-r0


def test_rpm_epoch_policies() -> None:
    load("RLSA-2024-2447")
    load("OESA-2024-1234")
    rocky = make_sbom(
        "Rocky Linux:9",
        [("openssl-libs", "1:3.0.7-25.el9_3", "openssl", "1:3.0.7-25.el9_3")],
    )
    rocky_fixed = make_sbom(
        "Rocky Linux:9", [("openssl-libs", "1:3.0.7-27.el9", "openssl", "1:3.0.7-27.el9")]
    )
    euler = make_sbom(
        "openEuler:22.03-LTS-SP3",
        [("openssl-libs", "1:1.1.1wa-2.oe2203sp3", "openssl", "1:1.1.1wa-2.oe2203sp3")],
    )
    euler_fixed = make_sbom(
        "openEuler:22.03-LTS-SP3",
        [("openssl-libs", "1:1.1.1wa-3.oe2203sp3", "openssl", "1:1.1.1wa-3.oe2203sp3")],
    )
    for sbom in (rocky, rocky_fixed, euler, euler_fixed):
        sbom_match(sbom_id=sbom.id)
    rocky_finding = findings_of(rocky)[("openssl-libs", "RLSA-2024:2447")]
    assert rocky_finding.fixed_version == "1:3.0.7-27.el9"
    assert rocky_finding.severity == "low"  # affected[].severity over the advisory's
    assert findings_of(rocky_fixed) == {}
    # openEuler drops the epoch: 1:1.1.1wa-2 is below the record's 1.1.1wa-3.
    assert set(findings_of(euler)) == {("openssl-libs", "OESA-2024-1234")}
    assert findings_of(euler_fixed) == {}


def test_go_ranges_last_affected_and_enumerated_versions() -> None:
    load("GO-2023-1571")
    load("GO-2099-0005-last-affected")
    cases = {
        ("stdlib", "v1.20.0"): ("GO-2023-1571", "1.20.1", "fixed"),  # the second range
        ("stdlib", "v1.19.7"): None,  # between the two ranges
        ("stdlib", "v1.19.5"): ("GO-2023-1571", "1.19.6", "fixed"),
        ("golang.org/x/net", "v0.6.0"): ("GO-2023-1571", "0.7.0", "fixed"),  # GIT range ignored
        ("golang.org/x/net", "v0.7.0"): None,
        ("github.com/example/yaml", "v1.4.2"): ("GO-2099-0005", "", "unknown"),  # inclusive
        ("github.com/example/yaml", "v1.4.3"): None,
        ("github.com/example/yaml", "v1.1.0"): None,
        ("github.com/example/yaml", "v0.0.0-20200101000000-abcdef123456"): (
            "GO-2099-0005",
            "",
            "unknown",
        ),  # enumerated in versions[]
    }
    for (name, version), want in cases.items():
        sbom = make_sbom("Go", [(name, version)], subject="binary")
        sbom_match(sbom_id=sbom.id)
        found = list(findings_of(sbom).values())
        if want is None:
            assert found == [], (name, version)
            continue
        assert len(found) == 1, (name, version)
        assert (found[0].advisory.osv_id, found[0].fixed_version, found[0].fix_state) == want


def test_unparsable_version_is_a_needs_review_finding() -> None:
    load("DEBIAN-CVE-2023-4911")
    sbom = make_sbom("Debian:12", [("libc6", "garbage", "glibc", "garbage")])
    summary = sbom_match(sbom_id=sbom.id)
    finding = findings_of(sbom)[("libc6", "DEBIAN-CVE-2023-4911")]
    assert "garbage" in finding.needs_review
    assert finding.fix_state == "unknown"
    assert summary["open"] == 1


def test_summary_and_matched_at(debian_sbom: Sbom) -> None:
    version = ImageVersionFactory(sbom=debian_sbom)
    other = ImageVersionFactory(sbom=debian_sbom)
    sbom_match(sbom_id=debian_sbom.id)
    for row in ImageVersion.objects.filter(id__in=[version.id, other.id]):
        summary = row.scan_summary
        assert {k: summary[k] for k in summary if k != "matched_at"} == {
            "open": 6,
            "critical": 1,
            "high": 2,
            "medium": 2,
            "low": 1,
            "unknown": 0,
            "fixable": 5,
            "needs_review": 0,
        }
        assert summary["matched_at"]
    debian_sbom.refresh_from_db()
    assert debian_sbom.matched_at is not None


def test_reconcile_resolve_reopen_and_package_gone(debian_sbom: Sbom) -> None:
    sbom_match(sbom_id=debian_sbom.id)
    before = findings_of(debian_sbom)
    libc6 = before[("libc6", "DEBIAN-CVE-2023-4911")]
    first_seen = libc6.first_seen

    # The data now says the fix is older than what is installed: fixed in data.
    row = AffectedPackage.objects.get(
        advisory__osv_id="DEBIAN-CVE-2023-4911", ecosystem="Debian:12"
    )
    original_ranges = row.ranges
    row.ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9"}]}]
    row.save()
    result = sbom_match(sbom_id=debian_sbom.id)
    assert result["resolved"] == 2  # libc6 and libc-bin
    libc6.refresh_from_db()
    assert (libc6.resolved_at is not None, libc6.resolution) == (True, "fixed_in_data")

    # And back: the same finding reopens (never a second row, first_seen kept).
    row.ranges = original_ranges
    row.save()
    result = sbom_match(sbom_id=debian_sbom.id)
    assert result["reopened"] == 2
    libc6.refresh_from_db()
    assert libc6.resolved_at is None and libc6.resolution == ""
    assert libc6.first_seen == first_seen
    assert Finding.objects.filter(sbom=debian_sbom, package=libc6.package).count() == 1

    # perl-base leaves the SBOM: package gone.
    perl = before[("perl-base", "DSA-5380-1")]
    SbomPackage.objects.filter(sbom=debian_sbom, package=perl.package).delete()
    sbom_match(sbom_id=debian_sbom.id)
    perl.refresh_from_db()
    assert perl.resolution == "package_gone"

    # The advisory is withdrawn: withdrawn.
    record = fixture_record("DSA-5724-1")
    record["withdrawn"] = "2024-08-01T00:00:00Z"
    record["modified"] = "2024-08-01T00:00:00Z"
    load_record(record)
    sbom_match(sbom_id=debian_sbom.id)
    ssh = Finding.objects.get(sbom=debian_sbom, advisory__osv_id="DSA-5724-1")
    assert ssh.resolution == "withdrawn"
    assert Finding.objects.filter(sbom=debian_sbom).count() == 6  # never deleted


def test_last_seen_moves_and_nothing_duplicates(debian_sbom: Sbom) -> None:
    sbom_match(sbom_id=debian_sbom.id)
    first = {f.id: f.last_seen for f in Finding.objects.filter(sbom=debian_sbom)}
    result = sbom_match(sbom_id=debian_sbom.id)
    assert (result["new"], result["resolved"]) == (0, 0)
    again = {f.id: f.last_seen for f in Finding.objects.filter(sbom=debian_sbom)}
    assert set(again) == set(first)
    assert all(again[i] > first[i] for i in first)


def test_lookups_are_batched_not_one_query_per_package() -> None:
    load("DEBIAN-CVE-2023-4911")
    small = make_sbom("Debian:12", [(f"pkg{i}", "1.0-1") for i in range(3)])
    large = make_sbom("Debian:12", [(f"pkg{i}", "1.0-1", f"src{i}", "1.0-1") for i in range(300)])
    add_package(large, "Debian:12", ("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"))
    counts = []
    for sbom in (small, large):
        with CaptureQueriesContext(connection) as ctx:
            sbom_match(sbom_id=sbom.id)
        counts.append(len(ctx.captured_queries))
    # The large SBOM adds one bulk insert of its finding, nothing per package.
    assert counts[1] <= counts[0] + 2
    assert len(findings_of(large)) == 1


@pytest.fixture
def no_syft(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> list[Any]:
    """PATH without syft, and any subprocess that names syft fails the test."""
    calls: list[Any] = []
    real_popen: Callable[..., Any] = subprocess.Popen

    class Guard(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *a: Any, **kw: Any) -> None:
            calls.append(args)
            if "syft" in str(args):
                raise AssertionError(f"the re-match ran the scanner: {args}")
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Guard)
    monkeypatch.setenv("PATH", str(tmp_path))
    return calls


def test_rematch_touches_only_changed_names_in_every_sbom(no_syft: list[Any]) -> None:
    load("DSA-5380-1")
    shared = [
        ("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"),
        ("perl-base", "5.36.0-7", "perl", "5.36.0-7"),
    ]
    image = make_sbom("Debian:12", shared)
    other_image = make_sbom("Debian:12", [*shared, ("bash", "5.2.15-2+b2")])
    unrelated = make_sbom("Debian:12", [("bash", "5.2.15-2+b2")])
    version = ImageVersionFactory(sbom=image)
    for sbom in (image, other_image, unrelated):
        sbom_match(sbom_id=sbom.id)
    perl_before = {f.id: f.last_seen for f in Finding.objects.filter(advisory__osv_id="DSA-5380-1")}
    assert len(perl_before) == 2

    # An import adds glibc's advisory: only packages named (or sourced from) glibc re-match.
    load("DEBIAN-CVE-2023-4911")
    started = timezone.now()
    result = findings_rematch(keys=[("Debian:12", "glibc")])
    assert result == {"packages": 1, "sboms": 2, "new": 2, "resolved": 0, "reopened": 0}
    assert set(findings_of(image)) == {
        ("libc6", "DEBIAN-CVE-2023-4911"),
        ("perl-base", "DSA-5380-1"),
    }
    assert ("libc6", "DEBIAN-CVE-2023-4911") in findings_of(other_image)
    assert findings_of(unrelated) == {}
    # perl's findings were not touched (not even last_seen).
    for finding in Finding.objects.filter(advisory__osv_id="DSA-5380-1"):
        assert finding.last_seen == perl_before[finding.id] < started
    version.refresh_from_db()
    assert version.scan_summary["open"] == 2
    assert version.scan_summary["high"] == 1
    assert not any("syft" in str(call) for call in no_syft)

    # A newer revision fixes it at the installed version: resolved everywhere, by the key.
    record = fixture_record("DEBIAN-CVE-2023-4911")
    record["modified"] = "2025-01-01T00:00:00Z"
    record["affected"][0]["ranges"][0]["events"][1]["fixed"] = "2.36-9+deb12u2"
    load_record(record)
    result = findings_rematch(keys=[("Debian:12", "glibc")])
    assert result["resolved"] == 2
    assert (
        Finding.objects.filter(
            advisory__osv_id="DEBIAN-CVE-2023-4911", resolution="fixed_in_data"
        ).count()
        == 2
    )
    version.refresh_from_db()
    assert version.scan_summary["open"] == 1


def test_rematch_by_binary_name_and_empty_keys(no_syft: list[Any]) -> None:
    sbom = make_sbom("Go", [("golang.org/x/net", "v0.6.0")], subject="binary")
    load("GO-2023-1571")
    assert findings_rematch(keys=[]) == {
        "packages": 0,
        "sboms": 0,
        "new": 0,
        "resolved": 0,
        "reopened": 0,
    }
    # The lists AdvisoryImport.changed_keys stores (JSON) work as well as tuples.
    result = findings_rematch(keys=[["Go", "golang.org/x/net"], ("Go", "nothing/stored")])
    assert (result["packages"], result["sboms"], result["new"]) == (1, 1, 1)
    assert set(findings_of(sbom)) == {("golang.org/x/net", "GO-2023-1571")}


def test_quarantined_rows_never_match() -> None:
    record = fixture_record("DSA-5380-1")
    record["id"] = "DSA-9999-1"
    record["affected"][0]["package"]["ecosystem"] = "Debian"
    load_record(record)
    sbom = make_sbom("Debian", [("perl-base", "5.36.0-7", "perl", "5.36.0-7")])
    sbom_match(sbom_id=sbom.id)
    assert findings_of(sbom) == {}


@pytest.mark.parametrize(
    "bad", [[("Go",)], [("Go", "")], ["Go/golang.org/x/net"], [("Go", None)], [{"Go": "x"}]]
)
def test_rematch_rejects_malformed_keys(bad: list[Any]) -> None:
    with pytest.raises(ValueError, match="not an \\(ecosystem, name\\) key"):
        findings_rematch(keys=bad)


def test_match_of_an_unknown_sbom_fails_loudly() -> None:
    with pytest.raises(Sbom.DoesNotExist):
        sbom_match(sbom_id=987654)


def test_rematch_resolves_withdrawn_and_gone_across_sboms(no_syft: list[Any]) -> None:
    load("DEBIAN-CVE-2023-4911")
    libc = ("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2")
    first, second = make_sbom("Debian:12", [libc]), make_sbom("Debian:12", [libc])
    assert findings_rematch(keys=[("Debian:12", "glibc")])["new"] == 2

    # libc6 leaves the second SBOM (a rescan wrote its new links): package gone there only.
    SbomPackage.objects.filter(sbom=second).delete()
    result = findings_rematch(keys=[("Debian:12", "libc6")])
    assert (result["sboms"], result["resolved"]) == (2, 1)
    gone = Finding.objects.get(sbom=second)
    assert gone.resolution == "package_gone"
    assert Finding.objects.get(sbom=first).resolved_at is None

    # The advisory is withdrawn by a newer revision: withdrawn.
    record = fixture_record("DEBIAN-CVE-2023-4911")
    record["modified"] = record["withdrawn"] = "2025-02-01T00:00:00Z"
    load_record(record)
    assert findings_rematch(keys=[("Debian:12", "glibc")])["resolved"] == 1
    assert Finding.objects.get(sbom=first).resolution == "withdrawn"
    assert Finding.objects.get(sbom=second).resolution == "package_gone"  # unchanged
