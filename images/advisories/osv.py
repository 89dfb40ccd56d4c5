"""Parse and validate one OSV record (schema 1.6) into plain dataclasses (no ORM, no I/O).

`parse_record` raises `OsvError` with a reason a person can act on for anything that would
make the record unsafe to store or to match: malformed JSON, no `id`/`modified`, a timestamp
that is not RFC 3339 with a zone, a range with both `fixed` and `last_affected`, a range
without `introduced`, an unknown range type, an oversized record. An `affected[]` entry whose
ecosystem cannot be matched (a distro ecosystem without its release suffix — `Debian` for
`Debian:12` — an unknown ecosystem, no package) is not an error: it is kept with a
`quarantined` reason, stored for people to see and never matched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Ecosystems whose versions belong to one release of a distribution: the OSV name carries the
# release after a colon (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.20`, `Rocky Linux:9`,
# `openEuler:22.03-LTS-SP3`). Without it a record would match every release at once.
DISTRO_ECOSYSTEMS = frozenset(
    {
        "AlmaLinux",
        "Alpaquita",
        "Alpine",
        "Azure Linux",
        "BellSoft Hardened Containers",
        "Debian",
        "Mageia",
        "openEuler",
        "openSUSE",
        "Photon OS",
        "Red Hat",
        "Rocky Linux",
        "SUSE",
        "Ubuntu",
    }
)
# Ecosystems without releases: the package name alone says what is affected. (Wolfi, Chainguard,
# MinimOS, CleanStart and Echo are rolling distributions: OSV names them without a release.)
# Any other name is quarantined as unknown: nothing could match it.
LANGUAGE_ECOSYSTEMS = frozenset(
    {
        "Android",
        "Bioconductor",
        "Bitnami",
        "Chainguard",
        "CleanStart",
        "ConanCenter",
        "CRAN",
        "crates.io",
        "Echo",
        "GHC",
        "GIT",
        "GitHub Actions",
        "Go",
        "Hackage",
        "Hex",
        "Julia",
        "Kubernetes",
        "Linux",
        "Maven",
        "MinimOS",
        "npm",
        "NuGet",
        "opam",
        "OSS-Fuzz",
        "Packagist",
        "Pub",
        "PyPI",
        "RubyGems",
        "SwiftURL",
        "VSCode",
        "Wolfi",
    }
)
RANGE_TYPES = frozenset({"SEMVER", "ECOSYSTEM", "GIT"})
EVENT_KINDS = frozenset({"introduced", "fixed", "last_affected", "limit"})
# Column sizes of the models the record is stored in (checked here, so a record that does not
# fit is a clear per-record error and never a database error halfway through an import).
MAX_ID = 100
MAX_ECOSYSTEM = 80
MAX_NAME = 255
MAX_PURL = 1000
MAX_SUMMARY = 500
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024


class OsvError(ValueError):
    """A record that cannot be imported; `str(exc)` is the reason."""


@dataclass(frozen=True)
class SeverityEntry:
    """One `severity[]` entry: `type` (CVSS_V3, CVSS_V4, Ubuntu …), `score` (vector or word)."""

    type: str
    score: str


@dataclass(frozen=True)
class Affected:
    """One `affected[]` entry; `quarantined` says why it is never matched (blank: matched)."""

    ecosystem: str
    name: str
    purl: str
    ranges: list[dict[str, Any]]
    versions: list[str]
    ecosystem_specific: dict[str, Any]
    database_specific: dict[str, Any]
    severity: tuple[SeverityEntry, ...]
    quarantined: str = ""


@dataclass(frozen=True)
class OsvRecord:
    """A validated OSV record; `raw` is the record as given, `sha256` its canonical digest."""

    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    upstream: tuple[str, ...]
    related: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[SeverityEntry, ...]
    affected: tuple[Affected, ...]
    database_specific: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)
    sha256: str = ""


def canonical_sha256(record: dict[str, Any]) -> str:
    """The digest of a record's canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_timestamp(value: Any, key: str) -> datetime:
    """An RFC 3339 timestamp with a zone (`2024-01-02T03:04:05Z`), or OsvError."""
    if not isinstance(value, str) or not value.strip():
        raise OsvError(f"'{key}' must be an RFC 3339 timestamp string, got {value!r:.80}")
    text = value.strip()
    if "T" not in text.upper():
        raise OsvError(f"'{key}' is not an RFC 3339 timestamp (no time): {text!r:.80}")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise OsvError(f"'{key}' is not an RFC 3339 timestamp: {text!r:.80}") from exc
    if parsed.tzinfo is None:
        raise OsvError(f"'{key}' has no time zone (use Z or an offset): {text!r:.80}")
    return parsed


def ecosystem_quarantine_reason(ecosystem: str) -> str:
    """Why an affected entry of `ecosystem` must never be matched ('' when it may be)."""
    if not ecosystem:
        return "no package ecosystem"
    base, _, suffix = ecosystem.partition(":")
    if base in DISTRO_ECOSYSTEMS:
        if not suffix.strip(": "):
            return (
                f"ecosystem {ecosystem!r} has no release suffix (e.g. '{base}:<release>'): "
                "it would match every release"
            )
        return ""
    if base in LANGUAGE_ECOSYSTEMS:
        return ""
    return f"unknown ecosystem {ecosystem!r}"


def parse_record(
    data: bytes | str | dict[str, Any], *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> OsvRecord:
    """Validate one OSV record given as JSON bytes/text or an already-decoded object."""
    if isinstance(data, bytes | str):
        if len(data) > max_bytes:
            raise OsvError(f"record is {len(data)} bytes; the limit is {max_bytes} bytes")
        try:
            decoded = json.loads(data, parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise OsvError(f"malformed JSON: not UTF-8 (byte {exc.start})") from exc
        except (ValueError, RecursionError) as exc:
            raise OsvError(f"malformed JSON: {exc}") from exc
    else:
        decoded = data
        size = len(json.dumps(decoded, separators=(",", ":")))
        if size > max_bytes:
            raise OsvError(f"record is {size} bytes; the limit is {max_bytes} bytes")
    if not isinstance(decoded, dict):
        raise OsvError(f"a record must be a JSON object, not {type(decoded).__name__}")
    record: dict[str, Any] = decoded
    _check_values(record)
    version = record.get("schema_version")
    if version is not None and (not isinstance(version, str) or version.split(".")[0] != "1"):
        raise OsvError(f"unsupported schema_version {version!r:.20} (this portal reads 1.x)")
    osv_id = record.get("id")
    if not isinstance(osv_id, str) or not osv_id.strip():
        raise OsvError("no 'id'")
    osv_id = osv_id.strip()
    if len(osv_id) > MAX_ID or any(c.isspace() for c in osv_id):
        raise OsvError(f"'id' must be at most {MAX_ID} characters without spaces")
    if "modified" not in record:
        raise OsvError("no 'modified'")
    modified = parse_timestamp(record["modified"], "modified")
    published = _optional_timestamp(record, "published")
    withdrawn = _optional_timestamp(record, "withdrawn")
    affected_raw = _list(record, "affected")
    affected = tuple(_affected(entry, index) for index, entry in enumerate(affected_raw))
    return OsvRecord(
        id=osv_id,
        modified=modified,
        published=published,
        withdrawn=withdrawn,
        aliases=_ids(record, "aliases"),
        upstream=_ids(record, "upstream"),
        related=_ids(record, "related"),
        summary=_text(record, "summary"),
        details=_text(record, "details"),
        severity=_severity(record.get("severity"), "severity"),
        affected=affected,
        database_specific=_object(record, "database_specific"),
        raw=record,
        sha256=canonical_sha256(record),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_values(record: dict[str, Any]) -> None:
    """No NUL characters (PostgreSQL refuses them in text and jsonb) and no NaN/Infinity
    (not JSON), anywhere in the record; iterative, so deep nesting cannot exhaust the stack."""
    stack: list[Any] = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise OsvError("the record contains a NUL (\\u0000) character")
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise OsvError("malformed JSON: NaN and Infinity are not JSON")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _optional_timestamp(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    return parse_timestamp(value, key)


def _list(obj: dict[str, Any], key: str, where: str = "") -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OsvError(f"'{where}{key}' must be a list, not {type(value).__name__}")
    return value


def _object(obj: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OsvError(f"'{where}{key}' must be an object, not {type(value).__name__}")
    return value


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OsvError(f"'{key}' must be a string, not {type(value).__name__}")
    return value


def _ids(record: dict[str, Any], key: str) -> tuple[str, ...]:
    values = _list(record, key)
    seen: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise OsvError(f"'{key}' must be a list of identifiers, got {value!r:.80}")
        if len(value.strip()) > MAX_ID:
            raise OsvError(f"an identifier in '{key}' is longer than {MAX_ID} characters")
        seen[value.strip()] = None
    return tuple(seen)


def _severity(value: Any, where: str) -> tuple[SeverityEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise OsvError(f"'{where}' must be a list, not {type(value).__name__}")
    entries = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("score"), str)
        ):
            raise OsvError(f"'{where}' entries need a string 'type' and 'score': {item!r:.120}")
        entries.append(SeverityEntry(type=item["type"], score=item["score"].strip()))
    return tuple(entries)


def _affected(entry: Any, index: int) -> Affected:
    where = f"affected[{index}]."
    if not isinstance(entry, dict):
        raise OsvError(f"'affected[{index}]' must be an object")
    package = _object(entry, "package", where)
    ecosystem = package.get("ecosystem", "")
    name = package.get("name", "")
    purl = package.get("purl", "") or ""
    for key, value, limit in (
        ("ecosystem", ecosystem, MAX_ECOSYSTEM),
        ("name", name, MAX_NAME),
        ("purl", purl, MAX_PURL),
    ):
        if not isinstance(value, str):
            raise OsvError(f"'{where}package.{key}' must be a string")
        if len(value) > limit:
            raise OsvError(f"'{where}package.{key}' is longer than {limit} characters")
    ranges = [_range(item, f"{where}ranges[{n}]") for n, item in enumerate(_list(entry, "ranges"))]
    versions = _list(entry, "versions", where)
    if not all(isinstance(v, str) for v in versions):
        raise OsvError(f"'{where}versions' must be a list of strings")
    quarantined = ecosystem_quarantine_reason(ecosystem.strip())
    if not quarantined and not name.strip():
        quarantined = "no package name"
    return Affected(
        ecosystem=ecosystem.strip(),
        name=name.strip(),
        purl=purl.strip(),
        ranges=ranges,
        versions=list(versions),
        ecosystem_specific=_object(entry, "ecosystem_specific", where),
        database_specific=_object(entry, "database_specific", where),
        severity=_severity(entry.get("severity"), f"{where}severity"),
        quarantined=quarantined,
    )


def _range(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise OsvError(f"'{where}' must be an object")
    kind = item.get("type")
    if kind not in RANGE_TYPES:
        raise OsvError(f"'{where}' has an unknown range type {kind!r:.40} (SEMVER, ECOSYSTEM, GIT)")
    if kind == "GIT" and not isinstance(item.get("repo"), str):
        raise OsvError(f"'{where}' is a GIT range without 'repo'")
    events = item.get("events")
    if not isinstance(events, list) or not events:
        raise OsvError(f"'{where}' has no events")
    seen: set[str] = set()
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            raise OsvError(f"'{where}' events must each hold one key: {event!r:.80}")
        ((key, value),) = event.items()
        if key not in EVENT_KINDS:
            raise OsvError(f"'{where}' has an unknown event {key!r:.40}")
        if not isinstance(value, str) or not value:
            raise OsvError(f"'{where}' event {key!r} needs a version string")
        seen.add(key)
    if "introduced" not in seen:
        raise OsvError(f"'{where}' has no 'introduced' event")
    if "fixed" in seen and "last_affected" in seen:
        raise OsvError(
            f"'{where}' has both 'fixed' and 'last_affected' (the schema allows one kind per range)"
        )
    return item
