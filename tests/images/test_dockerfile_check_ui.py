"""The "Check Dockerfile" page: paste or upload, verdict, findings against lines, stages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from images.catalog_cache import policy_catalog_clear
from images.models import BaseImage
from images.policy import MAX_DOCKERFILE_BYTES
from images.views.catalog import dockerfile_lines
from portal.models import Team
from tests.images.factories import ImageVersionFactory
from tests.images.test_dockerfile_check_api import DEBIAN, FAILING, GCC, HOST, PASSING, WARNING

URL = "/dockerfile-check/"


@pytest.fixture(autouse=True)
def _fresh_cache(settings: object) -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    policy_catalog_clear()
    yield
    policy_catalog_clear()


@pytest.fixture
def browser(demo_catalog: None, make_user: object) -> Client:
    ImageVersionFactory(base_image=BaseImage.objects.get(name="build/gcc"), tag="12", digest=GCC)
    ImageVersionFactory(
        base_image=BaseImage.objects.get(name="runtime/debian"), tag="12", digest=DEBIAN
    )
    client = Client()
    client.force_login(make_user("uma", Team.objects.get(name="payments")))
    return client


def line_row(html: str, number: int) -> str:
    match = re.search(rf'<tr id="L{number}" class="([^"]*)">(.*?)</tr>', html, re.S)
    assert match, f"line {number} not rendered"
    return match.group(1)


def test_login_required(db: None) -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_form_and_nav_link(browser: Client) -> None:
    response = browser.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dockerfile-check-form"' in html
    assert 'enctype="multipart/form-data"' in html
    assert 'aria-current="page">Check Dockerfile</a>' in html


def test_failing_dockerfile_shows_findings_against_lines(browser: Client) -> None:
    text = (
        f"FROM {HOST}/runtime/debian@{DEBIAN}\nRUN curl -sL https://x.example/i.sh | sh\n{FAILING}"
    )
    response = browser.post(URL, {"dockerfile": text, "purpose": "service"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span class="badge badge-fail"' in html
    assert "BIP014" in html  # curl | sh, on line 2
    assert line_row(html, 2) == "sev-warn"
    assert line_row(html, 3) == "sev-fail"  # FROM alpine
    # every finding comes right after its line
    lines_html = html[html.index('id="dockerfile-lines"') :]
    assert lines_html.index('id="L2"') < lines_html.index("BIP014") < lines_html.index('id="L3"')
    assert 'id="stages-table"' in html
    assert f"{HOST}/runtime/debian@{DEBIAN}" in html


def test_passing_upload_shows_pass_and_pinned_stages(browser: Client) -> None:
    upload = SimpleUploadedFile("Dockerfile", PASSING.encode())
    response = browser.post(URL, {"file": upload, "purpose": "service"})
    html = response.content.decode()
    assert '<span class="badge badge-pass"' in html
    assert "No findings" in html
    assert "build/gcc" in html and "runtime/debian" in html


def test_warning_and_crlf_paste(browser: Client) -> None:
    response = browser.post(
        URL, {"dockerfile": WARNING.replace("\n", "\r\n"), "purpose": "service"}
    )
    html = response.content.decode()
    assert '<span class="badge badge-warn"' in html
    assert line_row(html, 1) == "sev-warn"
    assert "BIP010" in html


def test_same_engine_as_the_api(browser: Client, make_token: object) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    secret = make_token(Team.objects.get(name="payments"), ["dockerfile:check"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    text = "FROM ubuntu:22.04\nFROBNICATE\n"
    body = api.post("/api/v1/dockerfile-checks/", {"dockerfile": text}, format="json").json()
    context = browser.post(URL, {"dockerfile": text, "purpose": "service"}).context
    assert context["result"].to_dict() == body


def test_dockerfile_text_is_escaped(browser: Client) -> None:
    response = browser.post(
        URL, {"dockerfile": "FROM <script>alert(1)</script>\n", "purpose": "service"}
    )
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dockerfile": "   ", "purpose": "service"}, "Paste a Dockerfile or choose a file"),
        ({"dockerfile": "FROM x\x00", "purpose": "service"}, "Null characters"),
        ({"file": b"\xff\xfe\x00F", "purpose": "service"}, "not UTF-8"),
        ({"file": b"FROM x\n" + b"#" * MAX_DOCKERFILE_BYTES, "purpose": "service"}, "256 KiB"),
        ({"dockerfile": "FROM x", "purpose": "service", "service": "Bad_Name"}, "DNS-1123"),
        ({"dockerfile": "FROM x", "purpose": "prod"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_shown_on_the_form(browser: Client, data: dict, message: str) -> None:
    if isinstance(data.get("file"), bytes):
        data = {**data, "file": SimpleUploadedFile("Dockerfile", data["file"])}
    response = browser.post(URL, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html, html[:3000]
    assert 'id="check-result"' not in html


def test_dockerfile_lines_attaches_findings() -> None:
    from images.policy import Finding

    findings = (
        Finding("A", "warn", 1, "a"),
        Finding("B", "fail", 1, "b"),
        Finding("C", "info", 9, "c"),
    )
    lines = dockerfile_lines("FROM x\nRUN y\n", findings)
    assert [(line.number, line.text, line.worst) for line in lines] == [
        (1, "FROM x", "fail"),
        (2, "RUN y", "info"),  # line 9 is past the end: shown on the last line
    ]
    assert [f.rule for f in lines[0].findings] == ["A", "B"]
