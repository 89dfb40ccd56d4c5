"""Policy data (defaults.yaml + admin overrides) and SARIF output."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml

from images.policy import PolicyError, check_dockerfile, load_policy, to_sarif
from images.policy.config import DEFAULTS_PATH
from tests.images.test_policy_corpus import load_catalog

CATALOG = load_catalog()
TODAY = datetime.date(2025, 6, 1)
TAGGED = "FROM registry.local:5000/runtime/debian:12\nRUN apt-get install -y curl\n"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_list_every_rule_the_engine_uses() -> None:
    policy = load_policy(None)
    source = "".join(p.read_text() for p in (DEFAULTS_PATH.parent).glob("*.py"))
    import re

    used = set(re.findall(r'"(BIP\d{3})"', source))
    assert used and used <= set(policy.rules)
    for rule in policy.rules.values():
        assert rule.severity in ("fail", "warn", "info") and rule.title and rule.help


def test_override_severity_and_ignore(tmp_path: Path) -> None:
    policy = load_policy(
        write(tmp_path, "severities:\n  BIP010: fail\n  DL3008: info\nignore: [DL3015]\n")
    )
    result = check_dockerfile(TAGGED, catalog=CATALOG, policy=policy, today=TODAY)
    by_rule = {f.rule: f.severity for f in result.findings}
    assert by_rule["BIP010"] == "fail" and by_rule["DL3008"] == "info"
    assert "DL3015" not in by_rule
    assert result.verdict == "fail"


def test_ignore_portal_rule_and_hadolint_level_mapping(tmp_path: Path) -> None:
    policy = load_policy(
        write(tmp_path, "ignore: [BIP010]\nhadolint:\n  levels: {warning: info}\n")
    )
    result = check_dockerfile(TAGGED, catalog=CATALOG, policy=policy, today=TODAY)
    assert "BIP010" not in {f.rule for f in result.findings}
    assert result.verdict == "pass"  # DL3008 (a hadolint warning) is now info


def test_default_policy_is_cached_and_edits_are_picked_up(tmp_path: Path) -> None:
    assert load_policy(None) is load_policy()
    path = write(tmp_path, "ignore: [DL3008]\n")
    assert "DL3008" in load_policy(path).ignore
    Path(path).write_text("ignore: [DL3008, DL3009]\n")
    assert "DL3009" in load_policy(path).ignore


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("severities: [1, 2\n", "not valid YAML at line"),
        ("- just a list\n", "must be a mapping"),
        ("severities:\n  BIP010: critical\n", "unknown severity 'critical'"),
        ("severities:\n  BIP999: fail\n", "unknown portal rule 'BIP999'"),
        ("severities:\n  XYZ: fail\n", "not a rule id"),
        ("ignore: DL3008\n", "'ignore' must be a list"),
        ("ignore: [12]\n", "rule ids are strings"),
        ("rules: {}\n", "unknown key(s) rules"),
        ("severity: {}\n", "unknown key(s) severity"),
        ("hadolint:\n  levels: {fatal: fail}\n", "unknown hadolint level 'fatal'"),
        ("hadolint:\n  levels: {error: error}\n", "unknown severity 'error'"),
        ("hadolint:\n  timeout_seconds: 0\n", "timeout_seconds"),
    ],
)
def test_bad_policy_files(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert words in str(info.value)
    assert "policy.yaml" in str(info.value)


def test_missing_and_non_utf8_policy_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="Cannot read"):
        load_policy(tmp_path / "absent.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"ignore: [\xe9]\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_empty_override_file_keeps_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, ""))
    assert policy.severity("BIP004") == "fail" and policy.severity("DL3026") == "warn"


# --- SARIF ---


def test_sarif_structure() -> None:
    text = "FROM debian:latest\nRUN curl -s https://x | sh\nRUN cd /x && make\n"
    result = check_dockerfile(text, catalog=CATALOG, today=TODAY)
    log = to_sarif(result, filename="app/Dockerfile")
    assert json.loads(json.dumps(log)) == log
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    assert run["tool"]["driver"]["name"]
    assert len(run["results"]) == len(result.findings)
    levels = {"fail": "error", "warn": "warning", "info": "note"}
    for finding, item in zip(result.findings, run["results"], strict=True):
        assert item["ruleId"] == finding.rule
        assert ids[item["ruleIndex"]] == finding.rule
        assert item["level"] == levels[finding.severity]
        assert item["message"]["text"] == finding.message
        (location,) = item["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "app/Dockerfile"
        assert location["physicalLocation"]["region"]["startLine"] == finding.line >= 1
    portal = next(rule for rule in rules if rule["id"] == "BIP009")
    assert portal["shortDescription"]["text"] and portal["help"]["text"]
    assert portal["defaultConfiguration"]["level"] == "error"
    linter = next(rule for rule in rules if rule["id"].startswith("DL"))
    assert linter["helpUri"].startswith("https://github.com/hadolint/hadolint/wiki/DL")


def test_sarif_of_a_clean_file_has_no_results() -> None:
    result = check_dockerfile(
        "FROM registry.local:5000/runtime/debian@sha256:" + "3" * 64 + "\n",
        catalog=CATALOG,
        today=TODAY,
    )
    log = to_sarif(result, filename="Dockerfile")
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []


def test_defaults_yaml_is_plain_data() -> None:
    data = yaml.safe_load(DEFAULTS_PATH.read_text())
    assert set(data) == {"rules", "severities", "ignore", "hadolint"}
