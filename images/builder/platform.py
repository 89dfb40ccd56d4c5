"""Architecture names: what an image config says (OCI/Go names) from how callers spell them.

The OCI image config's `architecture` uses Go's GOARCH names (`amd64`, `arm64`, …). Binaries
are recorded in `uname -m` spelling (`x86_64`, `aarch64`, …), Debian has its own (`armhf`,
`ppc64el`); `oci_architecture` turns any of them into the OCI name.
"""

from __future__ import annotations

OCI_ARCHITECTURES = frozenset(
    {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "loong64", "mips64le"}
)
"""The architectures `image_from_rootfs` accepts (GOARCH names of Linux platforms)."""

_ALIASES = {
    "x86_64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64el": "ppc64le",
    "loongarch64": "loong64",
    "mips64el": "mips64le",
}

ANY_ARCHITECTURE = frozenset({"noarch", "all", "any"})
"""Spellings of "runs anywhere" (scripts, jars): such content has no architecture to record."""


def oci_architecture(name: str) -> str | None:
    """The OCI name of an architecture given in `uname -m`, Debian or OCI spelling.

    Returns None for architecture-independent content (`noarch`), for which the builder's
    default (the build machine's architecture) stands.

    Raises:
        ValueError: the name is no architecture this knows.
    """
    key = name.strip().lower()
    if key in ANY_ARCHITECTURE:
        return None
    oci = _ALIASES.get(key, key)
    if oci not in OCI_ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}: e.g. x86_64, aarch64, amd64, arm64")
    return oci
