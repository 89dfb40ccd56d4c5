"""A small client for the OCI Distribution API (Docker Registry HTTP API v2).

Pure module, no Django: used by the registry sync job and the builder (to read back what was
pushed). It lists repositories and tags, reads a manifest's digest, size, architecture, OS,
creation time and image config (labels), and puts a manifest under a tag (publish moves the
public tag onto the approved digest). Authentication: HTTP basic, or the Bearer token
challenge (Harbor, Docker Hub, GitLab). Transient failures raise `RegistryUnavailable` so
callers can retry with backoff; everything else raises `RegistryError` with a message a
person can act on."""

from .client import RegistryClient
from .protocol import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    MANIFEST_ACCEPT,
    MAX_CONFIG_BYTES,
    MAX_ENTRIES,
    MAX_LISTING_BYTES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    PAGE_SIZE,
    ManifestInfo,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    parse_challenge,
    parse_created,
    validate_reference,
    validate_repository,
)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "IMAGE_MANIFEST_TYPES",
    "INDEX_TYPES",
    "MANIFEST_ACCEPT",
    "MAX_CONFIG_BYTES",
    "MAX_ENTRIES",
    "MAX_LISTING_BYTES",
    "MAX_MANIFEST_BYTES",
    "ManifestInfo",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "PAGE_SIZE",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "RegistryNotFound",
    "RegistryUnavailable",
    "parse_challenge",
    "parse_created",
    "validate_reference",
    "validate_repository",
]
