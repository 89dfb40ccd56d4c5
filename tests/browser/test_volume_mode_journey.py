"""A developer's volume-mode journey in Debian's Chromium: upload, deploy, release, diff."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.deployments.factories import EnvironmentFactory, ServiceFactory
from tests.images.factories import ImageVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def binary_storage(settings, tmp_path: Path) -> Path:
    """Binary storage and upload temp files under this test's directory."""
    root = tmp_path / "store"
    (tmp_path / "upload-tmp").mkdir()
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "binaries": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    settings.PORTAL_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    return root


def _upload(page, service: str, path: Path, version: str) -> str:
    """Upload `path` through the form; return its sha256 (computed here, checked there)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    page.goto(f"/services/{service}/")
    page.click("#upload-link")
    page.wait_for_selector("#upload-form")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=version]", version)
    page.fill("input[name=arch]", "noarch")
    page.fill("input[name=sha256]", digest)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(f"**/services/{service}/")
    assert f"{service} {version} (noarch) uploaded." in page.inner_text("body")
    return digest


def test_upload_deploy_release_and_diff(
    page, developer, service_team, binary_storage, live_server, settings, tmp_path: Path
):
    settings.PORTAL_URL = live_server.url
    ServiceFactory(name="orders", team=service_team, language="other")
    EnvironmentFactory(name="dev", namespace="payments-dev", delivery_strategy="initFetch")
    runtime = ImageVersionFactory(base_image__name="runtime/debian", tag="12")
    ImageVersionFactory(base_image=runtime.base_image, tag="12-rc", state="candidate")

    page.goto("/services/orders/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#no-deployments")
    assert "No binary versions yet" in page.inner_text("body")

    first = tmp_path / "orders-1.sh"
    first.write_text('#!/bin/sh\necho orders 1.0.0 "$@"\n')
    sha1 = _upload(page, "orders", first, "1.0.0")
    assert page.locator("#version-table tbody tr").count() == 1

    page.click("#deploy-link")
    page.wait_for_selector("#deployment-form")
    assert page.input_value("input[name=args]") == "-m release"
    runtime_options = page.locator("select[name=runtime_version] option").all_inner_texts()
    assert runtime_options == [f"runtime/debian:12 ({runtime.digest[:19]}…)"]  # approved only
    page.select_option("select[name=environment]", label="dev")
    page.select_option("select[name=binary_version]", label=f"1.0.0 (noarch, {sha1[:12]})")
    page.fill("input[name=replicas]", "2")
    page.click("#deployment-form button[type=submit]")
    page.wait_for_selector("#release-form")
    assert "No release yet" in page.inner_text("body")
    deployment_url = page.url

    page.click("#release-form button[type=submit]")
    page.wait_for_selector("#manifest")
    manifest = page.inner_text("#manifest")
    assert "@sha256:" in runtime.pull_ref
    assert manifest.count(f"image: '{runtime.pull_ref}'") == 2  # init container and app
    assert sha1 in manifest and "name: PORTAL_TOKEN" in manifest
    assert "Release #1 created and validated." in page.inner_text("body")

    second = tmp_path / "orders-2.sh"
    second.write_text('#!/bin/sh\necho orders 1.1.0 "$@"\n')
    sha2 = _upload(page, "orders", second, "1.1.0")
    page.goto(deployment_url)
    page.select_option("select[name=binary_version]", label=f"1.1.0 (noarch, {sha2[:12]})")
    page.click("#release-form button[type=submit]")
    page.wait_for_selector("#manifest")
    assert sha2 in page.inner_text("#manifest")
    assert "Release #2 of" in page.inner_text("h1")

    page.goto(deployment_url)
    assert page.locator("#release-table tbody tr").count() == 2
    page.click("#diff-form button[type=submit]")  # defaults: #1 with #2
    page.wait_for_selector("#diff")
    removed = page.locator("#diff del").all_inner_texts()
    added = page.locator("#diff ins").all_inner_texts()
    assert any(sha1 in line for line in removed) and any(sha2 in line for line in added)
    assert any("--- release-1.yaml" in line for line in removed)
