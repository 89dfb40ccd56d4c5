"""The zh-Hans journey in Debian's Chromium: a Chinese browser logs in as a demo user, browses
the dashboard, search, deployments, teams, webhooks, the catalog, an image, the request form
and the rule reference — Chinese everywhere in the main chrome, no English left — then switches
to English with the language switcher."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.i18n_support import compile_catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Words that stay as they are in Chinese: names of things, not English prose.
KEEP = {"Dockerfile", "API", "CVE", "CVEs", "FROM", "JSON", "YAML", "SBOM", "OpenVEX", "OS", "EOL"}
KEEP |= {"Webhook"}  # 中文里也写作 Webhook
# The switcher names the other language in that language.
KEEP |= {"English"}
CHROME = "header nav, main h1, main h2, main th, main label, main button, main summary, main legend"


def _english_left(page, selector: str = CHROME) -> list[str]:
    """Words of three or more Latin letters in the chrome that are not names (KEEP)."""
    left = []
    for text in page.locator(selector).all_inner_texts():
        for word in re.findall(r"[A-Za-z]{3,}", text):
            if word not in KEEP and not _is_name(word):
                left.append(word)
    return left


def _is_name(word: str) -> bool:
    # user names, image names and other data the page shows (the demo set's)
    return word.lower() in {
        "payments", "dev", "runtime", "build", "debian", "openeuler", "scratch", "alpine",
        "golang", "rocky", "centos", "ubuntu", "hadolint", "glibc", "libstdc", "portal", "demo",
    }  # fmt: skip


def _has_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


@pytest.fixture
def zh_page(browser, live_server):
    compile_catalog()
    context = browser.new_context(base_url=live_server.url, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_chinese_browser_gets_the_portal_in_chinese(zh_page, demo_catalog) -> None:
    from images.demo import DEMO_PASSWORD

    page = zh_page
    page.goto("/")
    assert "/login/" in page.url
    assert page.get_attribute("html", "lang") == "zh-hans"
    assert page.inner_text("main h1") == "登录"
    page.fill("input[name=username]", "payments-dev")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_selector("#images-by-status")  # the home page is the dashboard
    assert page.inner_text("main h1") == "仪表盘"
    nav = page.inner_text("header nav")
    for label in ("镜像目录", "申请", "豁免", "服务", "任务", "令牌", "退出登录"):
        assert label in nav, nav
    assert _english_left(page) == [], (page.url, _english_left(page))

    # The pages merged after the first translation: search, deployments, teams, webhooks.
    for url in ("/search/?q=runtime", "/deployments/", "/teams/", "/teams/payments/", "/webhooks/"):
        page.goto(url)
        assert _has_chinese(page.inner_text("main")), url
        assert _english_left(page) == [], (page.url, _english_left(page))

    page.goto("/base-images/")
    page.wait_for_selector("#catalog-table")
    assert page.inner_text("main h1") == "基础镜像目录"
    assert _english_left(page) == [], (page.url, _english_left(page))
    badges = page.locator("#catalog-table .badge").all_inner_texts()
    assert badges and all(_has_chinese(b) for b in badges), badges

    page.click("#catalog-table >> text=runtime/debian")
    page.wait_for_url("**/base-images/*/")
    assert _has_chinese(page.inner_text("main"))
    assert _english_left(page) == [], (page.url, _english_left(page))

    page.goto("/image-requests/new/")
    assert page.inner_text("main h1") == "申请基础镜像"
    labels = page.locator("main label").all_inner_texts()
    assert any("配方类型" in label for label in labels), labels
    assert _english_left(page, "header nav, main h1, main h2, main button") == []

    shots = os.environ.get("PORTAL_SCREENSHOTS")  # a directory: look at the pages (1366, 390 px)
    if shots:
        for width in (1366, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for name, url in (("catalog", "/base-images/"), ("request", "/image-requests/new/")):
                page.goto(url)
                page.screenshot(path=str(Path(shots) / f"zh-{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})

    page.goto("/rules/BIP004/")
    assert "受限的基础镜像（alpine）" in page.inner_text("main h1")
    assert "alpine 避免长期使用" in page.inner_text("#rule-why blockquote")
    assert page.inner_text("#rule-fix h2") == "修复方法"

    # The switcher: back to English, and the choice sticks on the next page.
    page.click("button[data-language=en]")
    page.wait_for_selector("button[data-language=zh-hans]")
    assert page.get_attribute("html", "lang") == "en"
    assert "Restricted base image (alpine)" in page.inner_text("main h1")
    page.goto("/base-images/")
    assert page.inner_text("main h1") == "Base image catalog"
