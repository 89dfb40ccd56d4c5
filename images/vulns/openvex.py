"""OpenVEX 0.2.0 documents (pure): build one from waiver statements, check one's structure.

Spec: https://github.com/openvex/spec/blob/main/OPENVEX-SPEC.md (v0.2.0). A document has
`@context`, `@id`, `author`, `timestamp`, `version` and `statements`; each statement names a
`vulnerability`, its `products`, a `status` and, per status, a `justification` or
`impact_statement` (not_affected) or an `action_statement` (affected).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
VEX_STATUSES = frozenset({"not_affected", "affected", "fixed", "under_investigation"})
VEX_JUSTIFICATIONS = frozenset(
    {
        "component_not_present",
        "vulnerable_code_not_present",
        "vulnerable_code_not_in_execute_path",
        "vulnerable_code_cannot_be_controlled_by_adversary",
        "inline_mitigations_already_exist",
    }
)


@dataclass(frozen=True)
class VexStatement:
    """One statement: a vulnerability (and its aliases) about some products."""

    vulnerability: str
    products: Sequence[str]
    status: str
    aliases: Sequence[str] = ()
    subcomponents: Sequence[str] = ()
    justification: str = ""
    impact_statement: str = ""
    action_statement: str = ""
    timestamp: dt.datetime | None = None
    status_notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The statement as OpenVEX JSON (empty optional fields left out)."""
        vulnerability: dict[str, Any] = {"name": self.vulnerability}
        if self.aliases:
            vulnerability["aliases"] = sorted(set(self.aliases) - {self.vulnerability})
        products = []
        for product in self.products:
            entry: dict[str, Any] = {"@id": product}
            if self.subcomponents:
                entry["subcomponents"] = [{"@id": s} for s in self.subcomponents]
            products.append(entry)
        body: dict[str, Any] = {
            "vulnerability": vulnerability,
            "products": products,
            "status": self.status,
        }
        for key in ("justification", "impact_statement", "action_statement", "status_notes"):
            value = getattr(self, key)
            if value:
                body[key] = value
        if self.timestamp is not None:
            body["timestamp"] = _iso(self.timestamp)
        body.update(self.extra)
        return body


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def openvex_document(
    statements: Iterable[VexStatement],
    *,
    author: str,
    timestamp: dt.datetime,
    id_prefix: str = "https://openvex.dev/docs/public/base-image-portal",
    version: int = 1,
) -> dict[str, Any]:
    """An OpenVEX 0.2.0 document of `statements`; its `@id` is a hash of their content, so
    the same statements give the same id."""
    body = [s.to_dict() for s in statements]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
    return {
        "@context": OPENVEX_CONTEXT,
        "@id": f"{id_prefix}/vex-{digest}",
        "author": author,
        "timestamp": _iso(timestamp),
        "version": version,
        "statements": body,
    }


def _is_iso(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_statement(i: int, statement: Any, errors: list[str]) -> None:
    where = f"statements[{i}]"
    if not isinstance(statement, Mapping):
        errors.append(f"{where}: not an object")
        return
    vulnerability = statement.get("vulnerability")
    if not isinstance(vulnerability, Mapping) or not (
        isinstance(vulnerability.get("name"), str) and vulnerability["name"]
    ):
        errors.append(f"{where}.vulnerability.name: required")
    elif "aliases" in vulnerability and not (
        isinstance(vulnerability["aliases"], list)
        and all(isinstance(a, str) for a in vulnerability["aliases"])
    ):
        errors.append(f"{where}.vulnerability.aliases: a list of strings")
    products = statement.get("products")
    if not isinstance(products, list) or not products:
        errors.append(f"{where}.products: at least one product")
    else:
        for j, product in enumerate(products):
            if not isinstance(product, Mapping) or not (
                isinstance(product.get("@id"), str) and product["@id"]
            ):
                errors.append(f"{where}.products[{j}].@id: required")
    status = statement.get("status")
    if status not in VEX_STATUSES:
        errors.append(f"{where}.status: {status!r} is not an OpenVEX status")
    justification = statement.get("justification")
    if justification is not None and justification not in VEX_JUSTIFICATIONS:
        errors.append(f"{where}.justification: {justification!r} is not an OpenVEX justification")
    if status == "not_affected" and not (justification or statement.get("impact_statement")):
        errors.append(f"{where}: not_affected needs a justification or an impact_statement")
    if status == "affected" and not statement.get("action_statement"):
        errors.append(f"{where}: affected needs an action_statement")
    if "timestamp" in statement and not _is_iso(statement["timestamp"]):
        errors.append(f"{where}.timestamp: not an ISO 8601 time")


def openvex_validate(document: Any) -> list[str]:
    """What is wrong with `document` as OpenVEX 0.2.0 (empty: nothing)."""
    errors: list[str] = []
    if not isinstance(document, Mapping):
        return ["the document is not a JSON object"]
    if document.get("@context") != OPENVEX_CONTEXT:
        errors.append(f"@context: must be {OPENVEX_CONTEXT}")
    for key in ("@id", "author"):
        if not isinstance(document.get(key), str) or not document[key]:
            errors.append(f"{key}: required")
    if not _is_iso(document.get("timestamp")):
        errors.append("timestamp: required, ISO 8601")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append("version: required, an integer ≥ 1")
    statements = document.get("statements")
    if not isinstance(statements, list):
        errors.append("statements: required, a list")
    else:
        for i, statement in enumerate(statements):
            _check_statement(i, statement, errors)
    return errors
