"""The catalog as plain data: what the policy engine checks Dockerfiles against.

The Django layer builds a `Catalog` from the database (versions ordered oldest first); tests
build one from YAML with `catalog_from_dict`. Nothing here imports Django.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

KINDS = frozenset({"build", "runtime"})
VERSION_STATES = frozenset({"candidate", "approved", "superseded", "revoked"})
IMAGE_STATUSES = frozenset({"approved", "deprecated", "restricted", "blocked"})
OS_FAMILIES = frozenset(
    {
        "debian",
        "centos",
        "rocky",
        "almalinux",
        "ubuntu",
        "alpine",
        "openeuler",
        "anolis",
        "kylin",
        "none",
    }
)


class CatalogError(ValueError):
    """Catalog data given to `catalog_from_dict` is malformed; the message says where."""


@dataclass(frozen=True)
class CatalogVersion:
    """One immutable build of a catalog image."""

    tag: str
    digest: str
    state: str  # candidate | approved | superseded | revoked


@dataclass(frozen=True)
class CatalogImage:
    """A base image in the catalog, e.g. `runtime/debian`, with its versions (oldest first)."""

    name: str
    kind: str  # build | runtime
    os_family: str
    os_version: str = ""
    toolchain: str = ""
    status: str = "approved"  # approved | deprecated | restricted | blocked
    eol_date: datetime.date | None = None
    replacement: str | None = None
    registry: str = ""
    versions: tuple[CatalogVersion, ...] = ()

    @property
    def short_name(self) -> str:
        """The last path component of the name (`debian` for `runtime/debian`)."""
        return self.name.rsplit("/", 1)[-1]

    def reference(self, digest: str) -> str:
        """The digest-pinned pull reference `registry/name@digest`."""
        prefix = f"{self.registry}/" if self.registry else ""
        return f"{prefix}{self.name}@{digest}"

    def version_by_tag(self, tag: str) -> CatalogVersion | None:
        """The newest version carrying `tag`, preferring an approved one."""
        found = [v for v in self.versions if v.tag == tag]
        approved = [v for v in found if v.state == "approved"]
        if approved:
            return approved[-1]
        return found[-1] if found else None

    def version_by_digest(self, digest: str) -> CatalogVersion | None:
        """The version with this digest, if the catalog knows it."""
        for version in self.versions:
            if version.digest == digest:
                return version
        return None

    @property
    def current(self) -> CatalogVersion | None:
        """The newest approved version (versions are ordered oldest first)."""
        for version in reversed(self.versions):
            if version.state == "approved":
                return version
        return None

    @property
    def current_reference(self) -> str:
        """The pinned reference of the current version, or the bare name when there is none."""
        current = self.current
        return self.reference(current.digest) if current else self.name

    @property
    def facts(self) -> str:
        """`debian 12, gcc 12`: OS and toolchain for messages."""
        os_text = "" if self.os_family == "none" else f"{self.os_family} {self.os_version}".strip()
        return ", ".join(part for part in (os_text, self.toolchain) if part)

    def describe(self) -> str:
        """`runtime/debian (debian 12)`: the name with its OS and toolchain for messages."""
        return f"{self.name} ({self.facts})" if self.facts else self.name


@dataclass(frozen=True)
class Catalog:
    """All catalog images plus the `host:port` of every approved registry."""

    images: tuple[CatalogImage, ...] = ()
    registries: tuple[str, ...] = ()

    @cached_property
    def by_name(self) -> Mapping[str, CatalogImage]:
        """Images keyed by their full name."""
        return {image.name: image for image in self.images}

    @cached_property
    def by_short_name(self) -> Mapping[str, tuple[CatalogImage, ...]]:
        """Images keyed by the last component of their name (several may share one)."""
        index: dict[str, list[CatalogImage]] = {}
        for image in self.images:
            index.setdefault(image.short_name, []).append(image)
        return {key: tuple(value) for key, value in index.items()}


@dataclass(frozen=True)
class ServiceContext:
    """The service a Dockerfile belongs to: its language and its granted exceptions.

    `exceptions` holds rule ids (`BIP004`, `DL3008`), image names (`runtime/alpine`) or OS
    families (`alpine`) that this service is allowed to use despite the policy.
    """

    name: str
    language: str = ""
    exceptions: frozenset[str] = field(default_factory=frozenset)


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise CatalogError(f"{where}: the key {key!r} is missing.")
    return data[key]


def _choice(value: Any, allowed: frozenset[str], where: str) -> str:
    if value not in allowed:
        raise CatalogError(f"{where}: {value!r} is not one of {', '.join(sorted(allowed))}.")
    return str(value)


def catalog_from_dict(data: Mapping[str, Any]) -> Catalog:
    """Build a Catalog from plain data (e.g. YAML), validating every field.

    Args:
        data: `{"registries": [...], "images": [{"name", "kind", "os_family", ...,
            "versions": [{"tag", "digest", "state"}]}]}`.

    Raises:
        CatalogError: a field is missing or has a value outside its choices.
    """
    if not isinstance(data, Mapping):
        raise CatalogError("The catalog must be a mapping with 'images' and 'registries'.")
    images = []
    for number, raw in enumerate(data.get("images") or (), start=1):
        where = f"images[{number}]"
        if not isinstance(raw, Mapping):
            raise CatalogError(f"{where}: must be a mapping.")
        eol = raw.get("eol_date")
        if isinstance(eol, str):
            try:
                eol = datetime.date.fromisoformat(eol)
            except ValueError as exc:
                raise CatalogError(f"{where}: eol_date {eol!r} is not YYYY-MM-DD.") from exc
        elif eol is not None and not isinstance(eol, datetime.date):
            raise CatalogError(f"{where}: eol_date must be a date or null.")
        versions = tuple(
            CatalogVersion(
                tag=str(_require(v, "tag", f"{where}.versions")),
                digest=str(_require(v, "digest", f"{where}.versions")),
                state=_choice(v.get("state", "approved"), VERSION_STATES, f"{where}.versions"),
            )
            for v in raw.get("versions") or ()
        )
        images.append(
            CatalogImage(
                name=str(_require(raw, "name", where)),
                kind=_choice(_require(raw, "kind", where), KINDS, where),
                os_family=_choice(raw.get("os_family", "none"), OS_FAMILIES, where),
                os_version=str(raw.get("os_version") or ""),
                toolchain=str(raw.get("toolchain") or ""),
                status=_choice(raw.get("status", "approved"), IMAGE_STATUSES, where),
                eol_date=eol,
                replacement=raw.get("replacement") or None,
                registry=str(raw.get("registry") or ""),
                versions=versions,
            )
        )
    registries = tuple(str(r) for r in data.get("registries") or ())
    return Catalog(images=tuple(images), registries=registries)
