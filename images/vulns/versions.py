"""Version comparators per OSV ecosystem, each from the ecosystem's own rules.

* dpkg (Debian, Ubuntu): `python-debian`'s `Version` (dpkg's algorithm: epoch, upstream,
  revision, `~` sorts before everything), plus dpkg's own syntax errors that python-debian
  lets through (an upstream part not starting with a digit, an empty revision).
* rpm (Red Hat, Rocky Linux, AlmaLinux, SUSE, openEuler…): `rpm-version` (rpmvercmp's
  algorithm, Rust bindings; checked against librpm in the tests). Epoch policy per
  ecosystem: the Red Hat family writes `E:V-R` in OSV records and a missing epoch is 0, so
  the epoch is compared (`RPM_EPOCH`); openEuler's records carry no epoch at all, so the
  epoch is dropped from both sides before comparing (`RPM_NO_EPOCH`) — otherwise every
  package with an epoch would look newer than every fix.
* apk (Alpine, Wolfi, Chainguard): apk-tools' rules (src/version.c of apk-tools 3:
  `digit{.digit}…{letter}{_suffix{#}}…{~hash}{-r#}`, pre-release suffixes
  alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p, a digit with a leading zero
  compared as a string). `univers`' Alpine class rejects valid versions such as
  `1.2_git20240101` and `1.0_cvs`, so the rules are implemented here and tested on a corpus.
* PyPI: `packaging` (PEP 440).
* Go, npm, crates.io and SEMVER ranges: `semver` 3 (SemVer 2.0.0 precedence; build
  metadata ignored). Go's leading `v` is dropped, so `v1.2.3`, pseudo-versions
  (`v0.0.0-20240101000000-abcdef123456`) and `+incompatible` parse; the toolchain's
  `go1.21rc2` (syft's `stdlib` version) reads as 1.21.0-rc2, as OSV's Go records write it.

A version that does not parse raises `VersionError`; the matcher turns it into a
`needs_review` finding (never a silent skip). An ecosystem without a comparator raises
`UnsupportedEcosystem` (a `VersionError` too).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

import rpm_version
import semver
from debian.debian_support import Version as DebVersion
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version


class VersionError(ValueError):
    """A version that the ecosystem's rules cannot parse (or compare)."""

    def __init__(self, ecosystem: str, version: str, reason: str) -> None:
        super().__init__(f"{ecosystem}: cannot compare version {version!r}: {reason}")
        self.ecosystem = ecosystem
        self.version = version
        self.reason = reason


class UnsupportedEcosystem(VersionError):
    """No comparator for this ecosystem (enumerated `versions[]` still match by string)."""


class Family(enum.Enum):
    """How an OSV ecosystem orders its versions."""

    DPKG = "dpkg"
    RPM_EPOCH = "rpm"
    RPM_NO_EPOCH = "rpm-no-epoch"
    APK = "apk"
    PYPI = "pep440"
    SEMVER = "semver"
    GO = "go"


# The ecosystem's name before its first ":" (OSV: `Debian:12`, `Ubuntu:22.04:LTS`,
# `Alpine:v3.20`, `Rocky Linux:9`, `openEuler:22.03-LTS-SP3`).
_FAMILIES: dict[str, Family] = {
    "Debian": Family.DPKG,
    "Ubuntu": Family.DPKG,
    "Alpine": Family.APK,
    "Wolfi": Family.APK,
    "Chainguard": Family.APK,
    "Red Hat": Family.RPM_EPOCH,
    "Rocky Linux": Family.RPM_EPOCH,
    "AlmaLinux": Family.RPM_EPOCH,
    "Mageia": Family.RPM_EPOCH,
    "SUSE": Family.RPM_EPOCH,
    "openSUSE": Family.RPM_EPOCH,
    "openEuler": Family.RPM_NO_EPOCH,
    "PyPI": Family.PYPI,
    "Go": Family.GO,
    "npm": Family.SEMVER,
    "crates.io": Family.SEMVER,
}


def ecosystem_family(ecosystem: str) -> Family:
    """The comparator family of an OSV ecosystem string; `UnsupportedEcosystem` if none."""
    base = ecosystem.split(":", 1)[0].strip()
    family = _FAMILIES.get(base)
    if family is None:
        raise UnsupportedEcosystem(ecosystem, "", "no version comparator for this ecosystem")
    return family


class _Ordered(Protocol):
    """A parsed version: ordered by `<` only (equal when neither sorts before the other)."""

    def __lt__(self, other: Any, /) -> bool: ...


# --- dpkg ---------------------------------------------------------------------------

_DPKG_UPSTREAM_START = re.compile(r"^(?:\d+:)?\d")


def _parse_dpkg(version: str) -> _Ordered:
    try:
        parsed = DebVersion(version)
    except ValueError as exc:
        raise VersionError("dpkg", version, str(exc)) from exc
    if not _DPKG_UPSTREAM_START.match(version):
        raise VersionError("dpkg", version, "version number does not start with a digit")
    if version.endswith("-"):
        raise VersionError("dpkg", version, "revision number is empty")
    return parsed


# --- rpm ----------------------------------------------------------------------------

_RPM_EVR = re.compile(r"^(?:(\d+):)?([^:\-\s]+)(?:-([^:\-\s]+))?$")


def _parse_rpm(version: str, *, keep_epoch: bool) -> _Ordered:
    match = _RPM_EVR.match(version)
    if not match:
        raise VersionError("rpm", version, "not an [epoch:]version[-release]")
    epoch, ver, release = match.groups()
    if not any(ch.isalnum() for ch in ver):
        raise VersionError("rpm", version, "version has no alphanumeric part")
    text = ver if release is None else f"{ver}-{release}"
    if keep_epoch:
        text = f"{epoch or '0'}:{text}"
    try:
        evr: _Ordered = rpm_version.Evr.parse(text)
    except ValueError as exc:
        raise VersionError("rpm", version, str(exc)) from exc
    return evr


# --- apk (apk-tools 3, src/version.c) -----------------------------------------------

_T_INITIAL_DIGIT, _T_DIGIT, _T_LETTER, _T_SUFFIX, _T_SUFFIX_NO, _T_HASH, _T_REV, _T_END = range(8)
_T_INVALID = 8
_APK_SUFFIXES = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    # 4: no suffix
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_APK_SUFFIX_NONE = 4
_HEX = frozenset("0123456789abcdef")


def _apk_tokens(version: str) -> list[tuple[int, int, str]]:
    """apk-tools' tokens as (type, number or suffix rank, text), ending with END or INVALID."""
    tokens: list[tuple[int, int, str]] = []
    pos, n = 0, len(version)

    def digits(start: int) -> tuple[int, str]:
        end = start
        while end < n and version[end].isdigit() and version[end].isascii():
            end += 1
        return end, version[start:end]

    pos, text = digits(0)
    if not text:
        return [(_T_INVALID, 0, "")]
    tokens.append((_T_INITIAL_DIGIT, int(text), text))
    token = _T_INITIAL_DIGIT
    while True:
        if pos >= n:
            tokens.append((_T_END, 0, ""))
            return tokens
        ch = version[pos]
        if "a" <= ch <= "z":
            if token > _T_DIGIT:
                break
            token = _T_LETTER
            tokens.append((token, ord(ch), ch))
            pos += 1
        elif ch == "." or ch.isdigit():
            if ch == ".":
                if token > _T_DIGIT:
                    break
                pos += 1
            if token in (_T_INITIAL_DIGIT, _T_DIGIT):
                token = _T_DIGIT
            elif token == _T_SUFFIX:
                token = _T_SUFFIX_NO
            else:
                break
            pos, text = digits(pos)
            if not text:
                break
            tokens.append((token, int(text), text))
        elif ch == "_":
            if token > _T_SUFFIX_NO:
                break
            end = pos + 1
            while end < n and "a" <= version[end] <= "z":
                end += 1
            suffix = version[pos + 1 : end]
            if suffix not in _APK_SUFFIXES:
                break
            token = _T_SUFFIX
            tokens.append((token, _APK_SUFFIXES[suffix], suffix))
            pos = end
        elif ch == "~":
            if token >= _T_HASH:
                break
            end = pos + 1
            while end < n and version[end] in _HEX:
                end += 1
            if end == pos + 1:
                break
            token = _T_HASH
            tokens.append((token, 0, version[pos + 1 : end]))
            pos = end
        elif ch == "-":
            if token >= _T_REV or not version.startswith("-r", pos):
                break
            pos, text = digits(pos + 2)
            if not text:
                break
            token = _T_REV
            tokens.append((token, int(text), text))
        else:
            break
    tokens.append((_T_INVALID, 0, ""))
    return tokens


class ApkVersion:
    """An apk version ordered as `apk version -t` orders it (valid versions only)."""

    __slots__ = ("text", "tokens")

    def __init__(self, version: str) -> None:
        tokens = _apk_tokens(version)
        if tokens[-1][0] != _T_END:
            raise VersionError("apk", version, "not a valid apk version")
        self.text = version
        self.tokens = tokens

    def _cmp(self, other: ApkVersion) -> int:
        for (at, av, atext), (bt, bv, btext) in zip(self.tokens, other.tokens, strict=False):
            if at != bt:
                if at == _T_SUFFIX and av < _APK_SUFFIX_NONE:
                    return -1
                if bt == _T_SUFFIX and bv < _APK_SUFFIX_NONE:
                    return 1
                return -1 if at > bt else 1
            if at == _T_END:
                return 0
            if (at == _T_DIGIT and (atext[0] == "0" or btext[0] == "0")) or at == _T_HASH:
                if atext != btext:
                    return -1 if atext < btext else 1
            elif av != bv:
                return -1 if av < bv else 1
        return 0

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ApkVersion):
            return NotImplemented
        return self._cmp(other) < 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApkVersion):
            return NotImplemented
        return self._cmp(other) == 0

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"ApkVersion({self.text!r})"


def _parse_apk(version: str) -> _Ordered:
    return ApkVersion(version)


# --- PyPI, semver, Go ---------------------------------------------------------------


def _parse_pep440(version: str) -> _Ordered:
    try:
        return Pep440Version(version)
    except InvalidVersion as exc:
        raise VersionError("PyPI", version, str(exc)) from exc


def _parse_semver(version: str) -> _Ordered:
    try:
        parsed = semver.Version.parse(version)
    except (ValueError, TypeError) as exc:
        raise VersionError("semver", version, str(exc)) from exc
    return _SemverKey(parsed)


class _SemverKey:
    """semver's Version with SemVer precedence (build metadata ignored), hashable."""

    __slots__ = ("version",)

    def __init__(self, version: Any) -> None:
        self.version = version

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return bool(self.version.compare(other.version) < 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _SemverKey):
            return NotImplemented
        return bool(self.version.compare(other.version) == 0)

    def __hash__(self) -> int:
        return hash(str(self.version.replace(build=None)))


_GO_TOOLCHAIN = re.compile(r"^go(\d+)\.(\d+)(?:\.(\d+))?((?:rc|beta|alpha)\d+)?$")


def _parse_go(version: str) -> _Ordered:
    """Go module versions (`v1.2.3`, pseudo-versions) and toolchain versions as syft reports
    the `stdlib` module (`go1.20.1`, `go1.21`, `go1.21rc2` → 1.20.1, 1.21.0, 1.21.0-rc2)."""
    toolchain = _GO_TOOLCHAIN.match(version)
    if toolchain:
        major, minor, patch, pre = toolchain.groups()
        return _parse_semver(f"{major}.{minor}.{patch or 0}" + (f"-{pre}" if pre else ""))
    return _parse_semver(version[1:] if version.startswith("v") else version)


_PARSERS: dict[Family, Callable[[str], _Ordered]] = {
    Family.DPKG: _parse_dpkg,
    Family.RPM_EPOCH: lambda v: _parse_rpm(v, keep_epoch=True),
    Family.RPM_NO_EPOCH: lambda v: _parse_rpm(v, keep_epoch=False),
    Family.APK: _parse_apk,
    Family.PYPI: _parse_pep440,
    Family.SEMVER: _parse_semver,
    Family.GO: _parse_go,
}


@lru_cache(maxsize=262144)
def _parse_cached(family: Family, version: str) -> _Ordered:
    return _PARSERS[family](version)


def parse_version(family: Family, version: str) -> _Ordered:
    """The orderable form of `version` under `family`'s rules; `VersionError` if invalid."""
    try:
        return _parse_cached(family, version)
    except VersionError as exc:
        raise VersionError(family.value, version, exc.reason) from None


def compare(family: Family, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b`; `VersionError` if either is invalid."""
    pa, pb = parse_version(family, a), parse_version(family, b)
    # Order only through `<`: rpm-version's `==` is structural (`1.01` != `1.1`) while its
    # ordering is rpmvercmp's (they sort equal).
    if pa < pb:
        return -1
    return 1 if pb < pa else 0


def compare_versions(ecosystem: str, a: str, b: str) -> int:
    """`compare` under the rules of an OSV ecosystem string (`Debian:12`, `Go`…)."""
    return compare(ecosystem_family(ecosystem), a, b)
