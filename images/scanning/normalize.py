"""syft-json → normalised package identities (pure).

One identity per (OSV ecosystem, name, version, arch), with its source package:

* deb: dpkg's rule — no `Source` → the binary's own name and version; a `Source` without a
  version → the binary's version (syft-json keeps `source`/`sourceVersion`).
* rpm: the version is `E:V-R` when the package has an epoch (`V-R` otherwise); the source
  is the `sourceRpm` file name without `.src.rpm`, with the binary's epoch. Whether an
  ecosystem compares with or without the epoch is the matcher's policy, not ours.
* apk: the origin package is the source.
* language packages get their registry's ecosystem (Go, PyPI, npm, crates.io, Maven, …);
  Go versions lose their `v` (OSV's Go convention), the Go standard library is `stdlib`.

Distro packages get the image's distro ecosystem (`Debian:12`); without one they are kept
under `<kind>:unknown` — stored, never matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

DISTRO_KINDS = frozenset({"deb", "rpm", "apk", "alpm", "portage"})
LANGUAGE_ECOSYSTEMS: dict[str, str] = {
    "go-module": "Go",
    "python": "PyPI",
    "npm": "npm",
    "rust-crate": "crates.io",
    "java-archive": "Maven",
    "jenkins-plugin": "Maven",
    "gem": "RubyGems",
    "php-composer": "Packagist",
    "dotnet": "NuGet",
    "hex": "Hex",
    "dart-pub": "Pub",
    "hackage": "Hackage",
    "swift": "SwiftURL",
}
_SRPM_RE = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm\Z")


@dataclass(frozen=True)
class PackageIdentity:
    """One normalised package (the fields of `images.Package`)."""

    ecosystem: str
    name: str
    version: str
    arch: str
    source_name: str
    source_version: str
    purl: str
    kind: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The deduplication key (the database's unique identity)."""
        return (self.ecosystem, self.name, self.version, self.arch)


def _text(value: Any, limit: int = 255) -> str:
    return str(value).strip()[:limit] if value not in (None, "") else ""


def _rpm_version(version: str, release: str, epoch: Any) -> str:
    evr = f"{version}-{release}" if release else version
    if epoch not in (None, ""):
        return f"{epoch}:{evr}"
    return evr


def _maven_name(artifact: Mapping[str, Any]) -> str:
    purl = _text(artifact.get("purl"), 1000)
    if purl.startswith("pkg:maven/"):
        path = purl[len("pkg:maven/") :].split("@", 1)[0].split("?", 1)[0]
        parts = [unquote(part) for part in path.split("/") if part]
        if len(parts) >= 2:
            return f"{parts[-2]}:{parts[-1]}"
    metadata = artifact.get("metadata") or {}
    properties = metadata.get("pomProperties") or {}
    group, name = properties.get("groupId"), properties.get("artifactId")
    if group and name:
        return f"{group}:{name}"
    return _text(artifact.get("name"))


def _go_version(name: str, version: str) -> str:
    if name == "stdlib" and version.startswith("go"):
        return version[2:]
    return version[1:] if re.match(r"^v[0-9]", version) else version


def _identity(artifact: Mapping[str, Any], distro_ecosystem: str) -> PackageIdentity | None:
    kind = _text(artifact.get("type"), 30)
    name = _text(artifact.get("name"))
    version = _text(artifact.get("version"))
    metadata = artifact.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    purl = _text(artifact.get("purl"), 1000)
    if not name or not version:
        return None
    arch = _text(metadata.get("architecture") or metadata.get("arch"), 40)
    if kind in DISTRO_KINDS:
        ecosystem = distro_ecosystem or f"{kind}:unknown"
        if kind == "deb":
            name = _text(metadata.get("package")) or name
            version = _text(metadata.get("version")) or version
            source_name = _text(metadata.get("source")) or name
            source_version = _text(metadata.get("sourceVersion")) or version
        elif kind == "rpm":
            name = _text(metadata.get("name")) or name
            epoch = metadata.get("epoch")
            if metadata.get("version"):
                version = _rpm_version(
                    _text(metadata.get("version")), _text(metadata.get("release")), epoch
                )
            source_name, source_version = name, version
            match = _SRPM_RE.match(_text(metadata.get("sourceRpm")))
            if match:
                source_name = match.group("name")
                source_version = _rpm_version(match.group("version"), match.group("release"), epoch)
        elif kind == "apk":
            name = _text(metadata.get("package")) or name
            version = _text(metadata.get("version")) or version
            source_name = _text(metadata.get("originPackage")) or name
            source_version = version
        else:
            source_name, source_version = name, version
        return PackageIdentity(
            ecosystem, name, version, arch, source_name, source_version, purl, kind
        )
    ecosystem = LANGUAGE_ECOSYSTEMS.get(kind, "")
    if not ecosystem:
        return None  # binary classifiers, kernels, GitHub actions…: no OSV ecosystem
    if kind == "go-module":
        version = _go_version(name, version)
    elif ecosystem == "Maven":
        name = _maven_name(artifact)
    return PackageIdentity(ecosystem, name, version, arch, name, version, purl, kind)


def normalize_packages(
    document: Mapping[str, Any], *, distro_ecosystem: str
) -> list[PackageIdentity]:
    """The deduplicated package identities of a syft-json document, in a stable order."""
    artifacts = document.get("artifacts") or []
    found: dict[tuple[str, str, str, str], PackageIdentity] = {}
    for artifact in artifacts if isinstance(artifacts, list) else []:
        if not isinstance(artifact, Mapping):
            continue
        identity = _identity(artifact, distro_ecosystem)
        if identity is not None and identity.key not in found:
            found[identity.key] = identity
    return [found[key] for key in sorted(found)]


def unmapped_kinds(document: Mapping[str, Any]) -> dict[str, int]:
    """Counts of syft artifact types that have no OSV ecosystem (kept in the SBOM only)."""
    counts: dict[str, int] = {}
    artifacts = document.get("artifacts") or []
    for artifact in artifacts if isinstance(artifacts, list) else []:
        if not isinstance(artifact, Mapping):
            continue
        kind = _text(artifact.get("type"), 30)
        if kind not in DISTRO_KINDS and kind not in LANGUAGE_ECOSYSTEMS:
            counts[kind or "?"] = counts.get(kind or "?", 0) + 1
    return counts


def identities_of(items: Iterable[PackageIdentity]) -> set[tuple[str, str, str, str]]:
    """The keys of `items`."""
    return {item.key for item in items}
