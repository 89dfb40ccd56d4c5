"""Version comparators per OSV ecosystem, each checked against its reference.

* dpkg: differential against the real `dpkg --compare-versions` (hand-picked pairs and
  hypothesis-generated ones).
* rpm: differential against librpm (`rpm.labelCompare` of Debian's python3-rpm, run with
  the system python in one subprocess for the whole corpus; scripts/ensure-system-packages
  installs it).
* apk: Debian ships no apk-tools, so a hand corpus written from apk-tools' rules
  (src/version.c): suffix order, leading zeros, letters, `-rN`, `~hash`, invalid forms.
* PyPI (packaging), Go/npm/crates.io (semver): hand corpora of the tricky cases.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from images.vulns.versions import (
    Family,
    UnsupportedEcosystem,
    VersionError,
    compare,
    compare_versions,
    ecosystem_family,
)

# --- ecosystem → family ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "family"),
    [
        ("Debian:12", Family.DPKG),
        ("Debian:11", Family.DPKG),
        ("Ubuntu:22.04:LTS", Family.DPKG),
        ("Ubuntu:Pro:18.04:LTS", Family.DPKG),
        ("Alpine:v3.20", Family.APK),
        ("Rocky Linux:9", Family.RPM_EPOCH),
        ("AlmaLinux:9", Family.RPM_EPOCH),
        ("Red Hat:enterprise_linux:9::appstream", Family.RPM_EPOCH),
        ("openEuler:22.03-LTS-SP3", Family.RPM_NO_EPOCH),
        ("PyPI", Family.PYPI),
        ("Go", Family.GO),
        ("npm", Family.SEMVER),
        ("crates.io", Family.SEMVER),
    ],
)
def test_ecosystem_family(ecosystem: str, family: Family) -> None:
    assert ecosystem_family(ecosystem) is family


def test_unknown_ecosystem_is_a_typed_error() -> None:
    with pytest.raises(UnsupportedEcosystem):
        ecosystem_family("Hackage")
    with pytest.raises(VersionError):
        compare_versions("Hackage", "1", "2")


# --- dpkg against dpkg --------------------------------------------------------------------

DPKG = shutil.which("dpkg")


def dpkg_cmp(a: str, b: str) -> int:
    assert DPKG, "dpkg is part of every Debian system"
    for op, result in (("lt", -1), ("eq", 0)):
        if subprocess.run([DPKG, "--compare-versions", a, op, b], check=False).returncode == 0:
            return result
    return 1


DPKG_PAIRS = [
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"),
    ("1.0~", "1.0"),
    ("1.0", "1.0+b1"),
    ("1.0", "1.0.0"),
    ("1:1.0", "2.0"),
    ("0:1.0", "1.0"),
    ("2:0.1", "1:9.9"),
    ("2.36-9+deb12u3", "2.36-9+deb12u4"),
    ("2.36-9+deb12u10", "2.36-9+deb12u9"),
    ("2.36-9", "2.36-9+deb12u1"),
    ("5.36.0-7+deb12u1", "5.36.0-7"),
    ("252.22-1~deb12u1", "252.22-1"),
    ("252.22-1~deb12u1", "252.23-1~deb12u1"),
    ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"),
    ("1:9.2p1-2+deb12u2", "9.2p1-2+deb12u3"),
    ("1.2.3-1", "1.2.3-1.1"),
    ("1.2a", "1.2+"),
    ("1.2a", "1.2.a"),
    ("3.0.11-1~deb12u2", "3.0.11-1~deb12u2"),
    ("10", "9"),
    ("1.01", "1.1"),
    ("1-1-1", "1-1"),
    ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12"),
]


@pytest.mark.parametrize(("a", "b"), DPKG_PAIRS)
def test_dpkg_hand_pairs_match_dpkg(a: str, b: str) -> None:
    expected = dpkg_cmp(a, b)
    assert compare(Family.DPKG, a, b) == expected
    assert compare(Family.DPKG, b, a) == -expected


def test_dpkg_tilde_and_epoch_facts() -> None:
    assert compare(Family.DPKG, "1.0~rc1", "1.0") == -1
    assert compare(Family.DPKG, "1:1.0", "9.9") == 1
    assert compare_versions("Debian:12", "1.0-1", "0:1.0-1") == 0


_upstream = st.from_regex(r"\A[0-9][0-9a-z.+~]{0,8}\Z", fullmatch=True)
_revision = st.from_regex(r"\A[0-9a-z.+~]{1,6}\Z", fullmatch=True)
_dpkg_version = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}{rev}",
    st.sampled_from(["", "", "0:", "1:", "2:"]),
    _upstream,
    st.one_of(st.just(""), _revision.map(lambda r: f"-{r}")),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_dpkg_version, b=_dpkg_version)
def test_dpkg_generated_pairs_match_dpkg(a: str, b: str) -> None:
    assert compare(Family.DPKG, a, b) == dpkg_cmp(a, b)


@pytest.mark.parametrize("bad", ["", "abc", "1.0-", "1:", "a:1", "1_0", "1.0 2", "-1"])
def test_dpkg_bad_syntax_is_a_typed_error(bad: str) -> None:
    with pytest.raises(VersionError):
        compare(Family.DPKG, bad, "1.0")


# --- rpm against librpm -------------------------------------------------------------------

LIBRPM_SCRIPT = r"""
import json, sys
import rpm
def evr(text):
    epoch, _, rest = text.rpartition(":") if ":" in text else ("", "", text)
    version, _, release = rest.partition("-")
    return (epoch or "0", version, release or None)
pairs = json.load(sys.stdin)
print(json.dumps([rpm.labelCompare(evr(a), evr(b)) for a, b in pairs]))
"""


def librpm_compare(pairs: list[tuple[str, str]]) -> list[int]:
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", LIBRPM_SCRIPT],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, (
        "librpm's Python bindings are missing (apt-get install python3-rpm; "
        f"scripts/ensure-system-packages installs them): {proc.stderr[-500:]}"
    )
    return [int(x) for x in json.loads(proc.stdout)]


RPM_PAIRS = [
    ("1.0-1", "1.0-2"),
    ("1.0~rc1-1", "1.0-1"),
    ("1.0-1", "1.0^git1-1"),
    ("1.0^git1-1", "1.1-1"),
    ("2:1.0-1", "1:9.9-1"),
    ("0:1.0-1", "1.0-1"),
    ("1:3.0.7-25.el9_3", "1:3.0.7-27.el9"),
    ("3.0.7-27.el9", "1:3.0.7-25.el9_3"),
    ("2.34-83.el9_3.7", "2.34-83.el9_3.12"),
    ("1.1.1wa-2.oe2203sp3", "1.1.1wa-3.oe2203sp3"),
    ("1.0a-1", "1.0-1"),
    ("1.0.a-1", "1.0.1-1"),
    ("1.0_1-1", "1.0.1-1"),
    ("1.0+1-1", "1.0-1"),
    ("10-1", "9-1"),
    ("1.01-1", "1.1-1"),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3"),
]


def _random_rpm_versions(count: int) -> list[tuple[str, str]]:
    rng = random.Random(20261201)
    alphabet = "0123456789..~^+_abz"

    def one() -> str:
        epoch = rng.choice(["", "", "0:", "1:", "3:"])
        version = rng.choice("0123456789") + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 7))
        )
        release = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        release = release if any(c.isalnum() for c in release) else ""
        return f"{epoch}{version}" + (f"-{release}" if release else "")

    return [(one(), one()) for _ in range(count)]


def test_rpm_matches_librpm_on_the_corpus() -> None:
    pairs = RPM_PAIRS + _random_rpm_versions(3000)
    expected = librpm_compare(pairs)
    mismatches = [
        (a, b, compare(Family.RPM_EPOCH, a, b), want)
        for (a, b), want in zip(pairs, expected, strict=True)
        if compare(Family.RPM_EPOCH, a, b) != want
    ]
    assert mismatches == []


def test_rpm_epoch_policy_per_ecosystem() -> None:
    # Red Hat family: the epoch counts, a missing one is 0.
    assert compare_versions("Rocky Linux:9", "1:3.0.7-25.el9_3", "3.0.7-27.el9") == 1
    assert compare_versions("AlmaLinux:9", "1:3.0.7-25.el9_3", "1:3.0.7-27.el9") == -1
    # openEuler's records carry no epoch: it is dropped from both sides.
    assert compare_versions("openEuler:22.03-LTS-SP3", "1:1.1.1wa-2.oe2203sp3", "1.1.1wa-3") == -1
    assert compare_versions("openEuler:22.03-LTS-SP3", "1:1.0-1", "2:1.0-1") == 0


@pytest.mark.parametrize("bad", ["", "1.0-", "1.0-1-2", "a:1.0", "-", "1.0 -1", "..-1"])
def test_rpm_bad_syntax_is_a_typed_error(bad: str) -> None:
    with pytest.raises(VersionError):
        compare(Family.RPM_EPOCH, bad, "1.0-1")


# --- apk: a hand corpus from apk-tools' rules ---------------------------------------------

APK_CORPUS = """
1.0_rc1 < 1.0
1.0_alpha1 < 1.0_beta1
1.0_beta2 < 1.0_pre1
1.0_pre1 < 1.0_rc1
1.0_rc9 < 1.0_rc10
1.0 < 1.0_cvs
1.0_cvs < 1.0_svn
1.0_svn < 1.0_git
1.0_git < 1.0_hg
1.0_hg < 1.0_p1
1.0_p1 < 1.0_p2
1.0_p9 < 1.0_p10
1.2.3_git20240101 > 1.2.3
1.2.3_git20240101 < 1.2.4
1.0-r0 < 1.0-r1
1.0-r9 < 1.0-r10
1.0 < 1.0-r0
1.0_rc1-r5 < 1.0-r0
1.0a < 1.0b
1.0a > 1.0
1.0a < 1.0.1
1.0z < 1.1
1.0_p1 < 1.0a
1.01 < 1.1
1.001 < 1.01
1.10 > 1.9
006 > 1.0.0
1.2.3 > 1.2
1.2 < 1.2.0
3.3.1-r3 < 3.3.2-r0
3.3.2-r0 = 3.3.2-r0
2.40.1-r0 > 2.40.0-r3
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0~1234 < 1.0~2345
1.0~1234-r1 < 1.0~2345-r0
1.0~1234-r1 > 1.0~1234-r0
20240101 > 3.20.1
"""

APK_INVALID = [
    "",
    "a",
    ".1",
    "0.1bc",
    "0.1a1",
    "0.1a.1",
    "0.1_foo",
    "0.1_",
    "0.1-r",
    "0.1-r2_p3",
    "0.1-r2-r3",
    "0.1_pre2~",
    "0.1_pre2~12xz",
    "1.0-1",
    "1.0_1_alpha",
]


def _apk_pairs() -> list[tuple[str, str, str]]:
    rows = []
    for line in APK_CORPUS.strip().splitlines():
        a, op, b = line.split()
        rows.append((a, op, b))
    return rows


@pytest.mark.parametrize(("a", "op", "b"), _apk_pairs())
def test_apk_corpus(a: str, op: str, b: str) -> None:
    want = {"<": -1, "=": 0, ">": 1}[op]
    assert compare(Family.APK, a, b) == want
    assert compare(Family.APK, b, a) == -want


@pytest.mark.parametrize("bad", APK_INVALID)
def test_apk_invalid_versions_are_typed_errors(bad: str) -> None:
    with pytest.raises(VersionError):
        compare(Family.APK, bad, "1.0")


@pytest.mark.parametrize("good", ["1.2", "0.1_pre2", "0.1_pre2~1234abcd", "0.1_p1_pre2", "1.0-r10"])
def test_apk_valid_versions_parse(good: str) -> None:
    assert compare(Family.APK, good, good) == 0


def test_apk_order_is_transitive_on_the_corpus() -> None:
    versions = sorted({v for a, _, b in _apk_pairs() for v in (a, b)})
    for x in versions:
        for y in versions:
            for z in versions:
                if compare(Family.APK, x, y) < 0 and compare(Family.APK, y, z) < 0:
                    assert compare(Family.APK, x, z) < 0, (x, y, z)


# --- PyPI, semver, Go ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0rc1", "1.0", -1),
        ("1.0", "1.0.post1", -1),
        ("1.0.dev1", "1.0a1", -1),
        ("1.0", "1.0.0", 0),
        ("2!0.1", "1.0", 1),
        ("1.10", "1.9", 1),
    ],
)
def test_pypi(a: str, b: str, want: int) -> None:
    assert compare_versions("PyPI", a, b) == want


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("v1.2.3", "1.2.3", 0),
        ("v0.0.0-20240101000000-abcdef123456", "v0.0.1", -1),
        ("v0.0.0-20240101000000-abcdef123456", "v0.0.0-20240201000000-abcdef123456", -1),
        ("v2.0.0+incompatible", "2.0.0", 0),
        ("v1.20.1", "1.20.3", -1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0-alpha.beta", "1.0.0-alpha.1", 1),
        ("1.10.0", "1.9.0", 1),
        ("go1.20.1", "1.20.1", 0),  # syft's stdlib version
        ("go1.21", "1.21.0", 0),
        ("go1.21rc2", "1.21.0", -1),
        ("go1.21rc2", "1.21.0-rc2", 0),
    ],
)
def test_go(a: str, b: str, want: int) -> None:
    assert compare_versions("Go", a, b) == want


def test_npm_and_crates_use_semver() -> None:
    assert compare_versions("npm", "4.17.20", "4.17.21") == -1
    assert compare_versions("crates.io", "0.10.0", "0.9.9") == 1
    with pytest.raises(VersionError):
        compare_versions("npm", "v1", "1.0.0")
    with pytest.raises(VersionError):
        compare_versions("PyPI", "not a version", "1.0")


_apk_version = st.builds(
    lambda digits, letter, suffixes, hashpart, rev: (
        ".".join(digits) + letter + "".join(suffixes) + hashpart + rev
    ),
    st.lists(st.from_regex(r"\A[0-9]{1,3}\Z", fullmatch=True), min_size=1, max_size=4),
    st.sampled_from(["", "", "a", "z"]),
    st.lists(
        st.builds(
            lambda s, n: f"_{s}{n}",
            st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]),
            st.sampled_from(["", "1", "2", "10"]),
        ),
        max_size=2,
    ),
    st.sampled_from(["", "", "~1a2b", "~ff"]),
    st.sampled_from(["", "-r0", "-r1", "-r10"]),
)


@settings(max_examples=300, deadline=None)
@given(a=_apk_version, b=_apk_version, c=_apk_version)
def test_apk_order_is_a_total_order_on_generated_versions(a: str, b: str, c: str) -> None:
    ab, bc, ac = compare(Family.APK, a, b), compare(Family.APK, b, c), compare(Family.APK, a, c)
    assert compare(Family.APK, b, a) == -ab
    if ab <= 0 and bc <= 0:
        assert ac <= 0, (a, b, c)
    assert compare(Family.APK, a, a) == 0
