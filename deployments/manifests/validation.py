"""Strict schema validation of rendered Kubernetes YAML (pure engine, no Django).

Uses the JSON schemas that the `kubernetes-validate` package ships (1.37.0 carries
Kubernetes 1.25 … 1.37, each also as a "-strict" variant that rejects unknown fields;
they are local files, so validation works offline). The package's own `validate()` re-reads
and re-parses the 1.5 MB `_definitions.json` on every call and compares versions as text
("1.9" > "1.37"), so this module loads each schema once, caches the compiled validator, and
maps versions numerically:

* a supported minor version is used as is;
* a version newer than the newest shipped one uses the newest;
* an older one uses the oldest shipped (1.25).

`ValidationResult.k8s_version_used` says which one was used.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

__all__ = [
    "ValidationResult",
    "schema_version_for",
    "supported_versions",
    "validate_manifest",
]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCHEMA_ROOT = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
_DIR_RE = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict\Z")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?\Z")


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one YAML text.

    Attributes:
        valid: True when every document validated.
        errors: one message per problem: "<Kind>/<name>: <path>: <message>".
        k8s_version_used: the schema version validated against ("1.35"), "" if none.
    """

    valid: bool
    errors: tuple[str, ...]
    k8s_version_used: str


@functools.cache
def _strict_dirs() -> dict[tuple[int, int], Path]:
    found: dict[tuple[int, int], Path] = {}
    for entry in _SCHEMA_ROOT.iterdir():
        match = _DIR_RE.match(entry.name)
        if match and entry.is_dir():
            found[(int(match.group(1)), int(match.group(2)))] = entry
    return found


def supported_versions() -> tuple[str, ...]:
    """Kubernetes minor versions with strict schemas, oldest first ("1.25", …)."""
    return tuple(f"{major}.{minor}" for major, minor in sorted(_strict_dirs()))


def schema_version_for(k8s_version: str) -> str:
    """The supported version used for `k8s_version` (see the module docstring).

    Raises:
        ValueError: `k8s_version` is not like "1.33", "v1.33.2" or "1.35.0-rc.1".
    """
    match = _VERSION_RE.match(k8s_version.strip()) if isinstance(k8s_version, str) else None
    if match is None:
        raise ValueError(
            f"not a Kubernetes version: {k8s_version!r} (expected e.g. '1.33' or 'v1.33.2')"
        )
    wanted = (int(match.group(1)), int(match.group(2)))
    available = sorted(_strict_dirs())
    if not available:
        raise ValueError(f"no strict schemas found under {_SCHEMA_ROOT}")
    if wanted in available:
        chosen = wanted
    elif wanted > available[-1]:
        chosen = available[-1]
    elif wanted < available[0]:
        chosen = available[0]
    else:  # a gap in the shipped versions: the newest not newer than the wanted one
        chosen = max(v for v in available if v <= wanted)
    return f"{chosen[0]}.{chosen[1]}"


@functools.cache
def _registry(version: str) -> Registry:
    major, minor = (int(part) for part in version.split("."))
    definitions = json.loads(
        (_strict_dirs()[(major, minor)] / "_definitions.json").read_text(encoding="utf-8")
    )
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Validator | None:
    """Compiled strict validator for one kind, or None when the version has no such schema."""
    major, minor = (int(part) for part in version.split("."))
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    filename = f"{kind.lower()}-{group_version}.json"
    if not re.fullmatch(r"[a-z0-9]+-[a-z0-9-]+\.json", filename):
        return None  # also keeps "../" out of the path
    path = _strict_dirs()[(major, minor)] / filename
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def _describe(document: dict[str, Any], index: int) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{document.get('kind', '?')}/{name or f'<document {index + 1}>'}"


def _document_errors(document: Any, index: int, version: str) -> list[str]:
    if not isinstance(document, dict):
        return [f"document {index + 1}: not a mapping (got {type(document).__name__})"]
    kind, api_version = document.get("kind"), document.get("apiVersion")
    where = _describe(document, index)
    if not isinstance(kind, str) or not isinstance(api_version, str) or not kind:
        return [f"{where}: apiVersion and kind are required strings"]
    validator = _validator(version, kind, api_version)
    if validator is None:
        return [f"{where}: Kubernetes {version} has no schema for {kind} in {api_version}"]
    messages = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        path = ".".join(str(part) for part in error.absolute_path) or "(root)"
        messages.append(f"{where}: {path}: {error.message}")
    return messages


def validate_manifest(yaml_text: str, k8s_version: str) -> ValidationResult:
    """Validate every document of `yaml_text` in strict mode (unknown fields are errors).

    Args:
        yaml_text: one or more YAML documents ("---" separated); empty documents are skipped.
        k8s_version: the target Kubernetes version ("1.33", "v1.35.2").

    Returns:
        ValidationResult; bad input (unparsable YAML, no objects, a bad version) is reported
        as an invalid result with a message, never raised.
    """
    try:
        version = schema_version_for(k8s_version)
    except ValueError as exc:
        return ValidationResult(valid=False, errors=(str(exc),), k8s_version_used="")
    try:
        # libyaml's loader when present: the same SafeLoader constructors and resolver, ~9×
        # faster (a rebase validates thousands of manifests; bench/rebase.py).
        documents = [doc for doc in yaml.load_all(yaml_text, Loader=_LOADER) if doc is not None]
    except yaml.YAMLError as exc:
        return ValidationResult(
            valid=False, errors=(f"not valid YAML: {exc}",), k8s_version_used=version
        )
    if not documents:
        return ValidationResult(
            valid=False, errors=("no Kubernetes objects in the text",), k8s_version_used=version
        )
    errors: list[str] = []
    for index, document in enumerate(documents):
        errors.extend(_document_errors(document, index, version))
    return ValidationResult(valid=not errors, errors=tuple(errors), k8s_version_used=version)
