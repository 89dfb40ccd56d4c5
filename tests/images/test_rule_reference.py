"""The rule reference: a page per portal rule in both languages, linked from every finding."""

from __future__ import annotations

import re

import pytest
import yaml
from django.conf import settings
from django.urls import reverse

from images.rule_reference import BUILD_RULES, QUOTES, RULES, rule_doc
from tests.i18n_support import compile_catalog

DEFAULTS = yaml.safe_load(
    (settings.BASE_DIR / "images" / "policy" / "defaults.yaml").read_text(encoding="utf-8")
)["rules"]
# The standard itself lives outside the repository (next to the checkouts of this workspace).
SEEDS = [
    settings.BASE_DIR.parent / "shared" / "seed",
    settings.BASE_DIR.parent.parent / "shared" / "seed",
]


def test_every_rule_of_the_default_policy_has_a_page_with_the_same_title() -> None:
    assert sorted(doc.rule for doc in RULES) == sorted(DEFAULTS)
    for doc in RULES:
        assert str(doc.title) == DEFAULTS[doc.rule]["title"], doc.rule
        assert doc.what and doc.why and doc.fix and doc.quote in QUOTES, doc.rule


def test_the_quotes_are_the_standards_own_words() -> None:
    standard = "".join(
        p.read_text(encoding="utf-8") for seed in SEEDS if seed.exists() for p in seed.glob("*.txt")
    )
    if not standard:
        pytest.skip("the standard's text is not next to this checkout")
    flat = "".join(standard.split())
    for key, quote in QUOTES.items():
        for part in quote.replace("那么问题来了", "").split(" 1. ")[:1]:
            assert "".join(part.split())[:20] in flat, key


@pytest.mark.parametrize("rule", ["BIP002", "BIP004", "BIP013", "BIP040"])
def test_a_rule_page_in_english(client, db, rule: str) -> None:
    body = client.get(reverse("images:rule-detail", args=[rule])).content.decode()
    doc = rule_doc(rule)
    assert doc is not None
    for section in ("rule-what", "rule-why", "rule-fix"):
        assert f'id="{section}"' in body
    assert str(doc.title) in body and str(doc.fix) in body
    assert f'<blockquote lang="zh-Hans">{doc.quote_text}' in body


def test_a_rule_page_in_chinese(client, db) -> None:
    compile_catalog()
    body = client.get(
        reverse("images:rule-detail", args=["BIP005"]), HTTP_ACCEPT_LANGUAGE="zh-Hans"
    ).content.decode()
    assert "不推荐使用 scratch" in body and "修复方法" in body and "检查内容" in body
    assert "scratch 是空镜像" in body  # the standard, quoted as written
    index = client.get(reverse("images:rule-reference"), HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert "规则参考" in index.content.decode()


def test_rule_pages_are_public_and_unknown_rules_404(client, db) -> None:
    assert client.get(reverse("images:rule-reference")).status_code == 200
    assert client.get("/rules/bip009/").status_code == 200  # ids are case-insensitive
    assert client.get("/rules/BIP999/").status_code == 404
    response = client.get("/rules/DL3008/")
    assert response.status_code == 302
    assert response["Location"] == "https://github.com/hadolint/hadolint/wiki/DL3008"


def test_findings_in_the_ui_link_to_their_rule(client, developer, demo_catalog) -> None:
    client.force_login(developer)
    response = client.post(
        reverse("images:dockerfile-check"),
        {"dockerfile": "FROM alpine:latest\n", "purpose": "service"},
    )
    body = response.content.decode()
    assert 'href="/rules/BIP009/" class="rule-link"' in body


def test_sarif_help_uri_points_at_the_rule_page(token_client, service_team, db) -> None:
    client = token_client(service_team, ["dockerfile:check"])
    response = client.post(
        "/api/v1/dockerfile-checks/?format=sarif",
        {"dockerfile": "FROM alpine:latest\n"},
        format="json",
    )
    assert response.status_code == 200, response.content
    rules = response.json()["runs"][0]["tool"]["driver"]["rules"]
    portal_rules = [r for r in rules if r["id"].startswith("BIP")]
    assert portal_rules, rules
    for rule in portal_rules:
        assert rule["helpUri"] == f"http://testserver/rules/{rule['id']}/"


def test_every_build_rule_the_request_report_emits_has_a_page() -> None:
    source = (settings.BASE_DIR / "images" / "services" / "reports.py").read_text()
    emitted = set(re.findall(r'"(BUILD\d{3})"', source))
    assert emitted == {doc.rule for doc in BUILD_RULES} == {f"BUILD00{n}" for n in range(1, 6)}
    for doc in BUILD_RULES:
        assert rule_doc(doc.rule) is doc
        assert doc.what and doc.why and doc.fix and doc.quote in QUOTES, doc.rule
        assert doc.severity in {"fail", "warn"} and doc.bad and doc.good, doc.rule


def test_a_build_rule_page_in_both_languages(client, db) -> None:
    url = reverse("images:rule-detail", args=["BUILD004"])
    body = client.get(url).content.decode()
    doc = rule_doc("BUILD004")
    assert doc is not None
    assert str(doc.title) in body and str(doc.fix) in body
    assert f'<blockquote lang="zh-Hans">{doc.quote_text}' in body
    assert "variant: custom" in body  # the example
    assert "badge-warn" in body  # its fixed severity, not the policy's default
    assert 'href="/image-requests/new/"' in body  # where the rule applies
    compile_catalog()
    zh = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "不常见的 mmdebstrap 变体" in zh and "修复方法" in zh
    index = client.get(reverse("images:rule-reference")).content.decode()
    assert 'id="rules-build"' in index
    for rule in ("BUILD001", "BUILD005"):
        assert f'href="/rules/{rule}/"' in index
    assert client.get("/rules/build003/").status_code == 200
