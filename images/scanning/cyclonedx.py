"""CycloneDX 1.6 JSON from a stored syft-json document (pure), with cyclonedx-python-lib.

syft-json stays the canonical form; CycloneDX is produced on export. Each syft artifact
becomes a component (name, version, purl, first CPE, licenses by name) with syft's facts
CycloneDX has no field for as properties (`syft:package:type`, `syft:metadata:source`,
`syft:metadata:sourceVersion`, `syft:metadata:architecture`); the distro is an
`operating-system` component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

_PROPERTIES = (
    ("source", "syft:metadata:source"),
    ("sourceVersion", "syft:metadata:sourceVersion"),
    ("originPackage", "syft:metadata:originPackage"),
    ("sourceRpm", "syft:metadata:sourceRpm"),
    ("epoch", "syft:metadata:epoch"),
    ("architecture", "syft:metadata:architecture"),
)


def _purl(value: Any) -> PackageURL | None:
    if not isinstance(value, str) or not value.startswith("pkg:"):
        return None
    try:
        return PackageURL.from_string(value)
    except ValueError:
        return None


def _component(artifact: Mapping[str, Any]) -> Component | None:
    name = str(artifact.get("name") or "").strip()
    if not name:
        return None
    metadata = artifact.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    properties = [Property(name="syft:package:type", value=str(artifact.get("type") or ""))]
    for key, label in _PROPERTIES:
        value = metadata.get(key)
        if value not in (None, ""):
            properties.append(Property(name=label, value=str(value)))
    licenses = []
    for entry in artifact.get("licenses") or []:
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        if isinstance(value, str) and value.strip():
            licenses.append(DisjunctiveLicense(name=value.strip()))
    cpes = artifact.get("cpes") or []
    cpe = None
    if cpes and isinstance(cpes[0], Mapping):
        cpe = str(cpes[0].get("cpe") or "") or None
    elif cpes and isinstance(cpes[0], str):
        cpe = cpes[0]
    return Component(
        name=name,
        version=str(artifact.get("version") or "") or None,
        type=ComponentType.LIBRARY,
        bom_ref=str(artifact.get("id") or "") or None,
        purl=_purl(artifact.get("purl")),
        cpe=cpe,
        licenses=licenses,
        properties=properties,
    )


def cyclonedx_json(document: Mapping[str, Any], *, subject_name: str, digest: str) -> str:
    """CycloneDX 1.6 JSON for a syft-json `document` of `subject_name` at `digest`."""
    bom = Bom()
    source = document.get("source") or {}
    is_image = str(source.get("type") or "") in ("image", "oci-dir", "oci-archive")
    root = Component(
        name=subject_name,
        version=digest,
        type=ComponentType.CONTAINER if is_image else ComponentType.APPLICATION,
        bom_ref=f"subject:{digest}",
    )
    bom.metadata.component = root
    descriptor = document.get("descriptor") or {}
    bom.metadata.properties.add(
        Property(
            name="syft:version",
            value=f"{descriptor.get('name', 'syft')} {descriptor.get('version', '')}",
        )
    )
    distro = document.get("distro") or {}
    if isinstance(distro, Mapping) and distro.get("id"):
        bom.components.add(
            Component(
                name=str(distro.get("id")),
                version=str(distro.get("versionID") or distro.get("version") or "") or None,
                type=ComponentType.OPERATING_SYSTEM,
                description=str(distro.get("prettyName") or "") or None,
                bom_ref=f"distro:{distro.get('id')}",
            )
        )
    seen: set[str] = set()
    for artifact in document.get("artifacts") or []:
        if not isinstance(artifact, Mapping):
            continue
        component = _component(artifact)
        if component is None or str(component.bom_ref) in seen:
            continue
        seen.add(str(component.bom_ref))
        bom.components.add(component)
    bom.register_dependency(root, list(bom.components))
    return str(JsonV1Dot6(bom).output_as_string(indent=2))
