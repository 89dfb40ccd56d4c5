"""os-release → the distro's OSV ecosystem string (pure).

OSV names a distro release in the ecosystem itself (`Debian:12`, `Alpine:v3.20`), so an
advisory for Debian 11 never matches a Debian 12 image. An os-release we cannot place gives
"" (its packages are stored but never matched against a distro ecosystem).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

_LINE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_os_release(text: str) -> dict[str, str]:
    """`/etc/os-release` (KEY=value, shell-quoted values, comments) → a dict."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if not match:
            continue
        key, value = match.groups()
        try:
            parts = shlex.split(value, posix=True)
        except ValueError:
            parts = [value.strip("\"'")]
        result[key] = " ".join(parts)
    return result


def _major(version_id: str) -> str:
    return version_id.split(".", 1)[0]


def _major_minor(version_id: str) -> str:
    return ".".join(version_id.split(".")[:2])


def osv_ecosystem(os_release: Mapping[str, str]) -> str:
    """The OSV ecosystem of an os-release mapping (keys as in the file: ID, VERSION_ID,
    VERSION, VERSION_CODENAME, ID_LIKE); "" when the distro or its release is unknown."""
    distro = (os_release.get("ID") or "").strip().lower()
    version_id = (os_release.get("VERSION_ID") or "").strip()
    version = os_release.get("VERSION") or ""
    if not distro:
        return ""
    if distro == "wolfi":
        return "Wolfi"
    if distro == "chainguard":
        return "Chainguard"
    if not version_id or not re.match(r"^[0-9]", version_id):
        return ""  # testing/sid/edge: no release to name
    if distro == "debian":
        return f"Debian:{_major(version_id)}"
    if distro == "ubuntu":
        lts = re.search(r"\bLTS\b", version) is not None
        return f"Ubuntu:{_major_minor(version_id)}" + (":LTS" if lts else "")
    if distro == "alpine":
        return f"Alpine:v{_major_minor(version_id)}"
    if distro == "rocky":
        return f"Rocky Linux:{_major(version_id)}"
    if distro == "almalinux":
        return f"AlmaLinux:{_major(version_id)}"
    if distro == "rhel":
        return f"Red Hat:enterprise_linux:{_major(version_id)}"
    if distro == "openeuler":
        # VERSION="22.03 (LTS-SP3)" → openEuler:22.03-LTS-SP3; VERSION="24.09" → openEuler:24.09
        match = re.search(r"\(([^)]*)\)", version)
        suffix = match.group(1).strip().replace(" ", "-") if match else ""
        return f"openEuler:{version_id}" + (f"-{suffix}" if suffix else "")
    if distro == "opensuse-leap":
        return f"openSUSE:Leap {version_id}"
    if distro in ("sles", "sled"):
        service_pack = version_id.split(".", 1)
        base = f"SUSE:Linux Enterprise Server {service_pack[0]}"
        return base + (f" SP{service_pack[1]}" if len(service_pack) > 1 else "")
    if distro == "mageia":
        return f"Mageia:{_major(version_id)}"
    return ""


def syft_distro_os_release(distro: Mapping[str, object]) -> dict[str, str]:
    """syft-json's `distro` object → os-release keys (syft renames them)."""
    keys = {
        "id": "ID",
        "versionID": "VERSION_ID",
        "version": "VERSION",
        "versionCodename": "VERSION_CODENAME",
        "prettyName": "PRETTY_NAME",
        "name": "NAME",
        "idLike": "ID_LIKE",
    }
    result: dict[str, str] = {}
    for key, name in keys.items():
        value = distro.get(key)
        if isinstance(value, list):
            result[name] = " ".join(str(item) for item in value)
        elif value:
            result[name] = str(value)
    return result
