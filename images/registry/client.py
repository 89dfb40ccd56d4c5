"""The registry client: listing, manifests, configs and tag moves over HTTP, with basic or Bearer
authentication and transient failures raised as `RegistryUnavailable` (the HTTP plumbing is
`images.registry.transport`)."""

from __future__ import annotations

import hashlib
from typing import Any

from .protocol import (
    _DIGEST_RE,
    _TAG_RE,
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    MAX_CONFIG_BYTES,
    MAX_ENTRIES,
    MAX_MANIFEST_BYTES,
    ManifestInfo,
    RegistryError,
    parse_created,
    validate_reference,
    validate_repository,
)
from .transport import RegistryTransport


class RegistryClient(RegistryTransport):
    """Client for one registry.

    Args:
        url: the registry's base URL, e.g. `https://harbor.example.com` or
            `http://127.0.0.1:5000`.
        username: for basic auth or to obtain a Bearer token.
        password: the password or token secret.
        verify: TLS verification: True, False, or a CA bundle path.
        timeout: seconds for each HTTP request (connect and read).
        token_hosts: hosts (`host` or `host:port`) of token services other than the registry
            itself that may receive the credentials, over https only.
    """

    def ping(self) -> bool:
        """Check that the registry speaks the v2 API and accepts our credentials.

        Returns:
            True. Raises RegistryError/RegistryUnavailable otherwise.
        """
        response = self._get("/v2/", scope="", what="API check")
        response.close()
        return True

    def list_repositories(self, *, limit: int = MAX_ENTRIES) -> list[str]:
        """All repository names in the catalog (`/v2/_catalog`, following `Link` pages)."""
        return list(
            self._paginate("/v2/_catalog", "repositories", "registry:catalog:*", "catalog", limit)
        )

    def list_tags(self, repository: str, *, limit: int = MAX_ENTRIES) -> list[str]:
        """All tags of `repository` (following `Link` pages)."""
        validate_repository(repository)
        return list(
            self._paginate(
                f"/v2/{repository}/tags/list",
                "tags",
                f"repository:{repository}:pull",
                f"tags of {repository}",
                limit,
            )
        )

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """The raw manifest: (bytes as served, media type, sha256 digest of those bytes)."""
        validate_repository(repository)
        validate_reference(reference)
        what = f"manifest {repository}{'@' if reference.startswith('sha256:') else ':'}{reference}"
        response = self._get(
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            what=what,
            accept=MANIFEST_ACCEPT,
        )
        header_digest = response.headers.get("Docker-Content-Digest", "")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        data = self._read(response, MAX_MANIFEST_BYTES, what)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if header_digest.startswith("sha256:") and header_digest != digest:
            raise RegistryError(
                f"{self.host}: {what}: served bytes hash to {digest} but the registry "
                f"claims {header_digest}"
            )
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"{self.host}: {what}: served bytes hash to {digest}")
        manifest = self._json(data, what)
        media_type = manifest.get("mediaType") if isinstance(manifest, dict) else None
        return data, str(media_type or content_type), digest

    def put_manifest(self, repository: str, tag: str, data: bytes, media_type: str) -> str:
        """Put the manifest `data` (exact bytes) under `repository:tag`; return its digest.

        The blobs it names must already be in `repository`. Putting the same bytes again is a
        no-op for the registry, so this is idempotent.

        Raises:
            RegistryError: the registry refused it, or stored other bytes than were sent.
        """
        validate_repository(repository)
        if not isinstance(tag, str) or not _TAG_RE.match(tag):
            raise RegistryError(f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-]")
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{self.host}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        what = f"put manifest {repository}:{tag}"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        response = self._get(
            f"/v2/{repository}/manifests/{tag}",
            scope=f"repository:{repository}:pull,push",
            what=what,
            method="PUT",
            data=data,
            content_type=media_type,
        )
        stored = response.headers.get("Docker-Content-Digest", "")
        response.close()
        if stored and stored != digest:
            raise RegistryError(
                f"{self.host}: {what}: the registry stored {stored}, not the {digest} sent"
            )
        return digest

    def image_config(self, repository: str, reference: str) -> dict[str, Any]:
        """The image config (architecture, os, `config.Labels`, …) of a single-platform image.

        Raises:
            RegistryError: the reference is an index or has no config.
        """
        data, media_type, _ = self.get_manifest(repository, reference)
        manifest = self._json(data, f"manifest {repository}:{reference}")
        if (
            not isinstance(manifest, dict)
            or media_type in INDEX_TYPES
            or not isinstance(manifest.get("config"), dict)
        ):
            raise RegistryError(
                f"{self.host}: {repository}:{reference}: not a single-platform image manifest"
            )
        config = self._blob_json(
            repository, str(manifest["config"].get("digest")), MAX_CONFIG_BYTES
        )
        if not isinstance(config, dict):
            raise RegistryError(f"{self.host}: {repository}:{reference}: config is not an object")
        return config

    def base_digest(self, repository: str, reference: str) -> str:
        """The digest of the image `reference` was built on, as its builder recorded it: the
        OCI annotation `org.opencontainers.image.base.digest` of the manifest (of the
        linux/amd64 image for an index), else the config label of the same name; "" when the
        image names no base (or an invalid one).
        """
        data, media_type, _ = self.get_manifest(repository, reference)
        manifest = self._json(data, f"manifest {repository}:{reference}")
        if not isinstance(manifest, dict):
            raise RegistryError(f"{self.host}: {repository}:{reference}: manifest is not an object")
        if media_type in INDEX_TYPES or "manifests" in manifest:
            found = _base_annotation(manifest)
            if found:
                return found
            child, _ = self._pick_platform(repository, reference, manifest)
            data, _, _ = self.get_manifest(repository, child)
            manifest = self._json(data, f"manifest {repository}@{child}")
            if not isinstance(manifest, dict):
                raise RegistryError(f"{self.host}: {repository}@{child}: not an object")
        found = _base_annotation(manifest)
        if found or not isinstance(manifest.get("config"), dict):
            return found
        config = self._blob_json(
            repository, str(manifest["config"].get("digest")), MAX_CONFIG_BYTES
        )
        labels = (config.get("config") or {}).get("Labels") if isinstance(config, dict) else None
        return _base_annotation({"annotations": labels})

    def _blob_json(self, repository: str, digest: str, limit: int) -> Any:
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise RegistryError(f"{self.host}: {repository}: unsupported blob digest {digest!r}")
        what = f"config blob {repository}@{digest}"
        response = self._get(
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            what=what,
        )
        data = self._read(response, limit, what)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{self.host}: {what}: content does not match its digest")
        return self._json(data, what)

    def manifest_info(self, repository: str, reference: str) -> ManifestInfo:
        """Digest, media type, size, architecture, OS and creation time of an image.

        For a multi-platform index the digest and media type are the index's; the other facts
        come from the linux/amd64 image (or the only one listed).
        """
        data, media_type, digest = self.get_manifest(repository, reference)
        manifest = self._json(data, f"manifest {repository}:{reference}")
        if not isinstance(manifest, dict):
            raise RegistryError(f"{self.host}: {repository}:{reference}: manifest is not an object")
        size = len(data)
        platforms: tuple[str, ...] = ()
        if media_type in INDEX_TYPES or "manifests" in manifest:
            child, platforms = self._pick_platform(repository, reference, manifest)
            child_data, child_type, _ = self.get_manifest(repository, child)
            size += len(child_data)
            image = self._json(child_data, f"manifest {repository}@{child}")
            if not isinstance(image, dict) or child_type not in IMAGE_MANIFEST_TYPES:
                raise RegistryError(
                    f"{self.host}: {repository}@{child}: nested index or unsupported type "
                    f"{child_type!r}"
                )
        elif media_type in IMAGE_MANIFEST_TYPES or "config" in manifest:
            image = manifest
        else:
            raise RegistryError(
                f"{self.host}: {repository}:{reference}: unsupported manifest type "
                f"{media_type!r} (Docker schema 1 images are not supported; re-push them)"
            )
        config_ref = image.get("config")
        layers = image.get("layers")
        if not isinstance(config_ref, dict) or not isinstance(layers, list):
            raise RegistryError(
                f"{self.host}: {repository}:{reference}: manifest lacks config or layers"
            )
        try:
            size += int(config_ref.get("size", 0)) + sum(int(layer["size"]) for layer in layers)
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"{self.host}: {repository}:{reference}: a layer has no valid size"
            ) from exc
        config = self._blob_json(repository, str(config_ref.get("digest")), MAX_CONFIG_BYTES)
        if not isinstance(config, dict):
            raise RegistryError(f"{self.host}: {repository}:{reference}: config is not an object")
        return ManifestInfo(
            digest=digest,
            media_type=media_type,
            size=size,
            architecture=str(config.get("architecture") or ""),
            os=str(config.get("os") or ""),
            created=parse_created(config.get("created")),
            platforms=platforms,
        )

    def _pick_platform(
        self, repository: str, reference: str, index: dict[str, Any]
    ) -> tuple[str, tuple[str, ...]]:
        entries = [
            m for m in index.get("manifests") or [] if isinstance(m, dict) and m.get("digest")
        ]
        described = []
        for entry in entries:
            platform = entry.get("platform") or {}
            parts = [platform.get("os", "?"), platform.get("architecture", "?")]
            if platform.get("variant"):
                parts.append(platform["variant"])
            described.append((entry, platform, "/".join(parts)))
        # Attestation manifests (buildkit's "unknown/unknown") are not images.
        images = [d for d in described if d[1].get("os") != "unknown"]
        if not images:
            raise RegistryError(f"{self.host}: {repository}:{reference}: the index lists no images")
        chosen = next(
            (
                d
                for d in images
                if d[1].get("os") == "linux" and d[1].get("architecture") == "amd64"
            ),
            images[0] if len(images) == 1 else None,
        )
        if chosen is None:
            chosen = next((d for d in images if d[1].get("os") == "linux"), images[0])
        return str(chosen[0]["digest"]), tuple(d[2] for d in images)


BASE_DIGEST_KEY = "org.opencontainers.image.base.digest"


def _base_annotation(document: dict[str, Any]) -> str:
    """`org.opencontainers.image.base.digest` of a manifest's `annotations` (or a labels map
    given as one), when it is a sha256 digest; else ""."""
    annotations = document.get("annotations")
    value = annotations.get(BASE_DIGEST_KEY) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and _DIGEST_RE.match(value) else ""
