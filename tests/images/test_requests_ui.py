"""The request pages: form, my requests, review queue, request page with allowed actions only."""

from __future__ import annotations

import pytest
from django.test import Client

from images.models import ImageRequest
from portal.models import Job
from tests.i18n_support import compile_catalog
from tests.images.factories import BaseImageFactory, ImageVersionFactory, RegistryFactory
from tests.images.test_workflow import DOCKERFILE

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(platform_team):
    registry = RegistryFactory(url="http://127.0.0.1:5999", is_default=True)
    image = BaseImageFactory(name="runtime/debian", owner_team=platform_team, registry=registry)
    return ImageVersionFactory(base_image=image, tag="12", state="approved")


@pytest.fixture
def dev_client(developer):
    client = Client()
    client.force_login(developer)
    return client


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


FORM = {
    "name": "runtime/debian-curl",
    "tag": "12-1",
    "kind": "runtime",
    "os_family": "debian",
    "os_version": "12",
    "toolchain": "",
    "recipe_kind": "dockerfile",
    "recipe": DOCKERFILE,
    "justification": "curl for health checks",
}


def test_form_submit_my_requests_and_request_page(catalog, dev_client):
    page = dev_client.get("/image-requests/new/")
    assert page.status_code == 200
    assert b'name="recipe"' in page.content and b"Submit for review" in page.content
    response = dev_client.post("/image-requests/new/", {**FORM, "submit": "1"})
    assert response.status_code == 302
    request = ImageRequest.objects.get()
    assert request.state == "submitted"
    assert response["Location"] == f"/image-requests/{request.pk}/"
    page = dev_client.get(response["Location"]).content.decode()
    assert "Policy report" in page and "BIP010" in page  # the unpinned FROM warning
    assert catalog.pull_ref in page  # the base it will be pinned to
    assert "Submitted" in page and "Created" in page  # timeline
    assert "Approve and build" not in page  # developers cannot approve
    listing = dev_client.get("/image-requests/").content.decode()
    assert "runtime/debian-curl:12-1" in listing
    assert dev_client.get("/image-requests/?queue=review").status_code == 403


def test_bad_form_is_400_with_the_error_on_the_field(catalog, dev_client):
    response = dev_client.post("/image-requests/new/", {**FORM, "recipe": "RUN true\n"})
    assert response.status_code == 400
    assert "no FROM instruction" in response.content.decode()
    assert not ImageRequest.objects.exists()


def test_review_queue_approve_and_build_progress_partial(catalog, dev_client, admin_client):
    dev_client.post("/image-requests/new/", {**FORM, "submit": "1"})
    request = ImageRequest.objects.get()
    queue = admin_client.get("/image-requests/?queue=review").content.decode()
    assert "runtime/debian-curl:12-1" in queue
    page = admin_client.get(f"/image-requests/{request.pk}/").content.decode()
    assert "Approve and build" in page and "Request changes" in page and "Reject" in page
    response = admin_client.post(f"/image-requests/{request.pk}/approve/", {"text": "ok"})
    assert response.status_code == 302
    job = Job.objects.get(kind="images.build")
    request.refresh_from_db()
    assert request.state == "approved" and request.build_job_id == job.pk
    partial = dev_client.get(f"/image-requests/{request.pk}/", HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert partial.status_code == 200 and body.startswith('<section id="build"')
    assert f"Job #{job.pk}" in body and 'hx-trigger="every 2s"' in body
    # Illegal from the UI: a flash message, nothing changes.
    response = admin_client.post(
        f"/image-requests/{request.pk}/reject/", {"text": "no"}, follow=True
    )
    assert "cannot become rejected" in response.content.decode()
    request.refresh_from_db()
    assert request.state == "approved"


def test_requester_sees_no_approve_button_on_own_request(catalog, admin_client):
    admin_client.post("/image-requests/new/", {**FORM, "submit": "1"})
    request = ImageRequest.objects.get()
    page = admin_client.get(f"/image-requests/{request.pk}/").content.decode()
    assert "Approve and build" not in page and "Request changes" in page
    response = admin_client.post(f"/image-requests/{request.pk}/approve/")
    assert response.status_code == 403


def test_declared_os_is_checked_against_the_recipe(catalog, dev_client):
    """BUILD005: a request declaring Ubuntu FROM a Debian base fails, and says what to set."""
    dev_client.post(
        "/image-requests/new/",
        {**FORM, "os_family": "ubuntu", "os_version": "22.04", "submit": "1"},
    )
    request = ImageRequest.objects.get()
    rules = {f["rule"]: f["message"] for f in request.policy_report["findings"]}
    assert "BUILD005" in rules and request.policy_verdict == "fail"
    assert "declares Ubuntu 22.04" in rules["BUILD005"] and "Debian 12" in rules["BUILD005"]


def test_bootstrap_suite_must_match_the_declared_version(catalog, dev_client):
    recipe = "suite: bullseye\nvariant: minbase\npackages: [ca-certificates]\n"
    dev_client.post(
        "/image-requests/new/",
        {**FORM, "recipe_kind": "bootstrap", "recipe": recipe, "submit": "1"},
    )
    request = ImageRequest.objects.get()
    found = [f for f in request.policy_report["findings"] if f["rule"] == "BUILD005"]
    assert found and "suite bullseye makes Debian 11" in found[0]["message"]
    assert found[0]["severity"] == "warn"  # the same family: the reviewer decides


def test_no_approve_button_on_a_failing_report(catalog, dev_client, admin_client):
    dev_client.post("/image-requests/new/", {**FORM, "recipe": "FROM alpine:3.19\n", "submit": "1"})
    request = ImageRequest.objects.get()
    assert request.policy_verdict == "fail"
    page = admin_client.get(f"/image-requests/{request.pk}/").content.decode()
    assert "Approve and build" not in page and "Request changes" in page


def test_no_approved_version_message_says_what_to_do(dev_client, platform_team):
    registry = RegistryFactory(url="http://127.0.0.1:5999", is_default=True)
    BaseImageFactory(name="runtime/debian", owner_team=platform_team, registry=registry)
    response = dev_client.post(
        "/dockerfile-check/", {"dockerfile": "FROM runtime/debian:12\n", "purpose": "service"}
    )
    page = response.content.decode()
    assert "(no approved version" not in page
    assert "has no approved version yet, so there is nothing to pin" in page
    assert "DL3026" not in page  # a catalog name is the portal's to resolve, not Docker Hub


def test_a_failed_builds_error_shows_in_the_readers_language(catalog, dev_client):
    from tests.i18n_support import compile_catalog

    compile_catalog()
    dev_client.post("/image-requests/new/", {**FORM, "submit": "1"})
    request = ImageRequest.objects.get()
    error = "Registry error: 503 from harbor.local"
    ImageRequest.objects.filter(pk=request.pk).update(state="failed", error=error)
    url = f"/image-requests/{request.pk}/"
    zh = dev_client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "镜像仓库错误：503 from harbor.local" in zh
    en = dev_client.get(url).content.decode()
    assert error in en and "镜像仓库错误" not in en


def test_build_findings_link_to_their_rule_page(catalog, dev_client):
    dev_client.post(
        "/image-requests/new/",
        {**FORM, "os_family": "ubuntu", "os_version": "22.04", "submit": "1"},
    )
    request = ImageRequest.objects.get()
    page = dev_client.get(f"/image-requests/{request.pk}/").content.decode()
    assert 'href="/rules/BUILD005/" class="rule-link"' in page


BOOTSTRAP_EOL = {
    **FORM,
    "os_version": "10",
    "recipe_kind": "bootstrap",
    "recipe": "suite: buster\nvariant: custom\n",
    "submit": "1",
}


def test_bootstrap_lifecycle_and_variant_findings_say_why(catalog, dev_client):
    dev_client.post("/image-requests/new/", BOOTSTRAP_EOL)
    request = ImageRequest.objects.get()
    rules = {f["rule"]: f["message"] for f in request.policy_report["findings"]}
    assert rules["BUILD003"].startswith("Debian 10 reached end of life on 2024-06-30")
    assert rules["BUILD004"] == (
        "Variant custom is unusual: base images use minbase, buildd, apt, essential."
    )


def test_the_request_report_is_written_in_the_submitters_language(catalog, dev_client):
    compile_catalog()
    dev_client.post(
        "/image-requests/new/",
        {**BOOTSTRAP_EOL, "os_family": "centos", "os_version": "7"},
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )
    request = ImageRequest.objects.get()
    rules = {f["rule"]: f["message"] for f in request.policy_report["findings"]}
    assert "mmdebstrap" in rules["BUILD002"] and "只能" in rules["BUILD002"]
    assert "生命周期" in rules["BUILD003"] and "2024-06-30" in rules["BUILD003"]
    assert "变体 custom" in rules["BUILD004"]
