"""The OCI Distribution protocol's vocabulary: media types, limits, errors, the manifest summary,
and the pure parsers and validators the client uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])

MAX_ENTRIES = 10_000
"""At most this many repositories or tags are read from one listing."""
PAGE_SIZE = 1000
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the limit distribution itself enforces
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_LISTING_BYTES = 16 * 1024 * 1024

_REPOSITORY_RE = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\Z"
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RegistryError(Exception):
    """The registry refused or could not answer the request; the message says why."""


class RegistryUnavailable(RegistryError):
    """A transient failure (unreachable, timeout, 5xx, 429): worth retrying later."""


class RegistryNotFound(RegistryError):
    """The repository, tag or blob does not exist (HTTP 404)."""


class RegistryAuthError(RegistryError):
    """Credentials are missing or not allowed to do this (HTTP 401/403)."""


@dataclass(frozen=True)
class ManifestInfo:
    """Facts about one image as the registry serves it.

    Attributes:
        digest: sha256 of the exact manifest bytes served (what `skopeo inspect` reports);
            for a multi-platform index, the index's digest.
        media_type: the manifest's (or index's) media type.
        size: bytes of the manifest + config + layers; for an index, the index plus the
            chosen platform's image.
        architecture: from the image config (e.g. `amd64`).
        os: from the image config (e.g. `linux`).
        created: the image config's creation time, timezone-aware, or None if absent.
        platforms: for an index, every `os/arch[/variant]` it lists; empty otherwise.
    """

    digest: str
    media_type: str
    size: int
    architecture: str
    os: str
    created: datetime | None
    platforms: tuple[str, ...] = ()


def validate_repository(name: str) -> str:
    """Return `name` if it is a valid repository path, else raise RegistryError."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise RegistryError(f"invalid repository name {name!r}: must be 1-255 characters")
    if not _REPOSITORY_RE.match(name):
        raise RegistryError(
            f"invalid repository name {name!r}: lowercase letters, digits and separators "
            "(. _ __ -) in /-separated components"
        )
    return name


def validate_reference(reference: str) -> str:
    """Return `reference` if it is a tag or a sha256 digest, else raise RegistryError."""
    if isinstance(reference, str) and (_TAG_RE.match(reference) or _DIGEST_RE.match(reference)):
        return reference
    raise RegistryError(
        f"invalid tag or digest {reference!r}: a tag is up to 128 of [A-Za-z0-9_.-], "
        "a digest is sha256:<64 hex>"
    )


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a `WWW-Authenticate` header into its scheme and parameters.

    >>> parse_challenge('Bearer realm="https://h/token",service="h",scope="repository:a:pull"')
    ('bearer', {'realm': 'https://h/token', 'service': 'h', 'scope': 'repository:a:pull'})
    """
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) or m.group(3) or ""
        for m in _CHALLENGE_PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params


def parse_created(value: object) -> datetime | None:
    """Parse an RFC 3339 time (nanoseconds allowed) into an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    match = re.match(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?\Z", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # a dot and at most 6 digits
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        parsed = datetime.fromisoformat(f"{base}{fraction}{zone}")
    except ValueError:
        return None
    if parsed.year <= 1:  # the zero time some tools write
        return None
    return parsed.astimezone(UTC)


def _error_detail(response: requests.Response) -> str:
    """The registry's own error text (`{"errors": [{"code", "message"}]}`) if any."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for err in body["errors"][:3]:
            if isinstance(err, dict):
                parts.append(f"{err.get('code', '')}: {err.get('message', '')}".strip(": "))
        return "; ".join(parts)
    return ""
