"""Corpus test: every Dockerfile in tests/images/dockerfiles/ against its expected result."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from images.policy import Catalog, ServiceContext, catalog_from_dict, check_dockerfile

CORPUS = Path(__file__).parent / "dockerfiles"
EXPECTED: dict[str, Any] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
TODAY: datetime.date = EXPECTED["today"]


def load_catalog() -> Catalog:
    """The test catalog that mirrors the demo catalog."""
    return catalog_from_dict(yaml.safe_load((CORPUS / "catalog.yaml").read_text()))


def _service(spec: dict[str, Any] | None) -> ServiceContext | None:
    if not spec:
        return None
    return ServiceContext(
        name=spec["name"],
        language=spec.get("language", ""),
        exceptions=frozenset(spec.get("exceptions", ())),
    )


def test_every_corpus_file_has_an_expectation() -> None:
    files = {path.name for path in CORPUS.glob("*.Dockerfile")}
    assert files == set(EXPECTED["files"])
    assert len(files) >= 24


@pytest.mark.parametrize("name", sorted(EXPECTED["files"]))
def test_corpus(name: str) -> None:
    spec = EXPECTED["files"][name]
    result = check_dockerfile(
        (CORPUS / name).read_bytes(),
        catalog=load_catalog(),
        service=_service(spec.get("service")),
        purpose=spec.get("purpose", "service"),
        today=TODAY,
    )
    portal = {f.rule for f in result.findings if f.rule.startswith("BIP")}
    linter = {f.rule for f in result.findings if not f.rule.startswith("BIP")}
    assert portal == set(spec["rules"]), result.to_dict()["findings"]
    assert set(spec.get("hadolint", ())) <= linter
    assert result.verdict == spec["verdict"]
    for rule, line in (spec.get("lines") or {}).items():
        assert line in {f.line for f in result.findings if f.rule == rule}
    for finding in result.findings:
        assert finding.message.strip()
        assert finding.severity in ("fail", "warn", "info")
