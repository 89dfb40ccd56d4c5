"""Issue 11's walls, walked in Debian's Chromium: the request form, errors, confirmations."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCKERFILE = (
    "FROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
    "RUN echo hello > /hello\n"
)


def login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("main")


def test_request_form_shows_each_field_once_and_stores_runtime(page, developer, demo_catalog):
    from images.models import ImageRequest

    login(page, "dave-dev")
    page.goto("/image-requests/new/")
    for name in ("kind", "recipe", "recipe_kind", "name", "os_family"):
        assert page.locator(f"[name={name}]").count() == 1, name
    page.fill("input[name=name]", "runtime/debian-hello")
    page.fill("input[name=tag]", "12-1")
    page.select_option("select[name=kind]", "runtime")
    page.select_option("select[name=recipe_kind]", "dockerfile")
    page.fill("textarea[name=recipe]", DOCKERFILE)
    page.fill("textarea[name=justification]", "a hello file for the smoke tests")
    page.click("button[name=submit][value='1']")
    page.wait_for_url("**/image-requests/*/")
    stored = ImageRequest.objects.get(name="runtime/debian-hello")
    assert stored.kind == "runtime"
    assert stored.recipe_kind == "dockerfile"
    assert stored.tag == "12-1"
    assert stored.state == "submitted"
