"""POST /api/v1/advisories/import/ and the advisory imports page: bad input, permissions, 202."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from images.models import Advisory, AdvisoryImport
from portal.choices import Role
from portal.jobs import job_execute
from portal.models import AuditEntry, Job, Team
from tests.images.osv_import import FIXTURES, GOOD, good_records, set_import_roots, zip_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/advisories/import/"
PAGE = "/advisory-imports/"


@pytest.fixture
def import_roots(settings: Any, tmp_path: Path) -> Path:
    return set_import_roots(settings, tmp_path)


@pytest.fixture
def admin_api(admin_user: Any) -> APIClient:
    client = APIClient()
    client.force_login(admin_user)
    return client


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, "application/octet-stream")


def test_a_json_path_starts_an_import_202_with_the_job(import_roots, admin_api) -> None:
    response = admin_api.post(URL, {"path": str(GOOD)}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["job"]["kind"] == "images.advisory_import"
    assert body["job"]["state"] == "queued" and body["job"]["queue"] == "default"
    assert response["Location"] == f"/api/v1/jobs/{body['job']['id']}/"
    record = AdvisoryImport.objects.get(pk=body["advisory_import"])
    assert (record.source_kind, record.source, record.job_id) == (
        "path",
        str(GOOD),
        body["job"]["id"],
    )
    assert AuditEntry.objects.filter(
        action="advisory_import.start", object_id=str(record.pk)
    ).exists()
    assert job_execute(body["job"]["id"]) == "succeeded"
    job = admin_api.get(f"/api/v1/jobs/{body['job']['id']}/").json()
    assert job["result"]["imported"] == 9 and job["result"]["rejected"] == 0


@pytest.mark.parametrize("kind", ["json", "zip"])
def test_an_upload_starts_an_import(import_roots, admin_api, tmp_path, kind) -> None:
    if kind == "zip":
        data = zip_of(good_records(), tmp_path / "all.zip").read_bytes()
        expected = 6
    else:
        data = (GOOD / "list/pypi-and-ubuntu.json").read_bytes()
        expected = 3
    response = admin_api.post(URL, {"file": _upload(f"osv.{kind}", data)}, format="multipart")
    assert response.status_code == 202, response.json()
    assert job_execute(response.json()["job"]["id"]) == "succeeded"
    record = AdvisoryImport.objects.get()
    assert (record.source_kind, record.source, record.imported) == (
        "upload",
        f"osv.{kind}",
        expected,
    )


@pytest.mark.parametrize(
    ("body", "fmt", "status", "detail"),
    [
        ({}, "json", 400, "exactly one source"),
        ({"path": "{good}", "url": "http://m.internal/a.zip"}, "json", 400, "got path, url"),
        ({"path": 5}, "json", 400, "Must be a string"),
        ({"path": "{good}", "extra": 1}, "json", 400, "Unknown key(s) 'extra'"),
        ({"path": "/etc/passwd"}, "json", 400, "outside the allowed import roots"),
        ({"path": "{good}/../../../../portal"}, "json", 400, "outside the allowed import roots"),
        ({"path": "{root}/escape"}, "json", 400, "outside the allowed import roots"),
        ({"path": "{root}/nothing.json"}, "json", 400, "does not exist"),
        ({"path": "osv/all.zip"}, "json", 400, "must be absolute"),
        ({"url": "http://evil.example/all.zip"}, "json", 400, "not under an allowed advisory"),
        ({"url": "file:///etc/passwd"}, "json", 400, "not an http(s) URL"),
        ({"path": ""}, "json", 400, "exactly one source"),
        ({"other": "x"}, "multipart", 400, "multipart field named 'file'"),
    ],
)
def test_bad_input_is_400_and_starts_nothing(
    import_roots, admin_api, tmp_path, body, fmt, status, detail
) -> None:
    (import_roots / "escape").symlink_to(tmp_path)
    body = {
        k: v.format(good=GOOD, root=import_roots) if isinstance(v, str) else v
        for k, v in body.items()
    }
    response = admin_api.post(URL, body, format=fmt)
    assert response.status_code == status, response.json()
    assert detail in response.json()["detail"], response.json()
    assert set(response.json()) >= {"detail", "code"}
    assert AdvisoryImport.objects.count() == 0 and Job.objects.count() == 0


def test_a_refused_source_is_explained_in_the_readers_language(import_roots, admin_api) -> None:
    from tests.i18n_support import compile_catalog

    compile_catalog()
    response = admin_api.post(
        URL, {"path": "osv/all.zip"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    assert response.status_code == 400
    assert "路径必须是绝对路径：'osv/all.zip'。" in response.json()["detail"], response.json()


def test_a_file_and_a_path_together_is_400(import_roots, admin_api) -> None:
    response = admin_api.post(
        URL, {"file": _upload("a.json", b"{}"), "path": str(GOOD)}, format="multipart"
    )
    assert response.status_code == 400
    assert "got path, upload" in response.json()["detail"]


def test_two_files_is_400(import_roots, admin_api) -> None:
    response = admin_api.post(
        URL, {"file": [_upload("a.json", b"{}"), _upload("b.json", b"{}")]}, format="multipart"
    )
    assert response.status_code == 400 and "one file" in response.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b'{"path": ', "application/json"), (b'["/x"]', "application/json"), (b"x", "text/plain")],
)
def test_malformed_bodies_are_4xx_not_500(import_roots, admin_api, raw, content_type) -> None:
    response = admin_api.generic("POST", URL, raw, content_type=content_type)
    assert response.status_code in (400, 415), response.content
    assert set(response.json()) >= {"detail", "code"}


def test_an_oversized_upload_is_413_and_stores_nothing(import_roots, admin_api, settings) -> None:
    settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES = 1000
    data = (GOOD / "list/pypi-and-ubuntu.json").read_bytes()
    assert len(data) > 1000
    response = admin_api.post(URL, {"file": _upload("big.json", data)}, format="multipart")
    assert response.status_code == 413, response.json()
    assert (
        response.json()["code"] == "too_large"
        and "the limit is 1000 bytes" in response.json()["detail"]
    )
    # and by Content-Length, before the body is parsed
    big = b"x" * (1000 + 70 * 1024)
    response = admin_api.post(URL, {"file": _upload("huge.json", big)}, format="multipart")
    assert response.status_code == 413
    assert AdvisoryImport.objects.count() == 0
    assert not list(Path(settings.PORTAL_ADVISORY_UPLOAD_DIR).rglob("*.json"))


def test_other_methods_are_refused(import_roots, admin_api) -> None:
    # 405 once the advisory viewset declares a default scope ("*"); 403 until then: DRF finds no
    # action for GET on this route, and ScopedPermission refuses an operation with no scope.
    assert admin_api.get(URL).status_code in (403, 405)
    assert admin_api.put(URL, {}, format="json").status_code in (403, 405)
    assert AdvisoryImport.objects.count() == 0


# --- the permission matrix -----------------------------------------------------------------

CALLERS = (
    "anon",
    "viewer",
    "developer",
    "maintainer",
    "admin",
    "plat_review",
    "plat_read",
    "svc_read",
)
#        method  path  anon  viewer dev  maint admin plat_review plat_read svc_read
MATRIX = [
    ("POST", URL, (401, 403, 403, 403, 202, 202, 403, 403)),
    ("GET", PAGE, (302, 403, 403, 403, 200, 302, 302, 302)),
    ("POST", PAGE, (302, 403, 403, 403, 302, 302, 302, 302)),
]


def _client(caller: str, path: str, users: dict[str, Any], make_token, teams) -> Any:
    api = path.startswith("/api/")
    client: Any = APIClient() if api else Client()
    if caller in users:
        client.force_login(users[caller])
    elif caller != "anon":
        team, scope = {
            "plat_review": (teams["platform"], "images:review"),
            "plat_read": (teams["platform"], "images:read"),
            "svc_read": (teams["service"], "images:read"),
        }[caller]
        secret = make_token(team, [scope])
        if api:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize(("method", "path", "statuses"), MATRIX, ids=lambda v: str(v)[:40])
def test_permission_matrix(
    import_roots,
    method,
    path,
    statuses,
    make_user,
    service_team,
    platform_team,
    admin_user,
    make_token,
) -> None:
    users = {
        "viewer": make_user("vic", service_team, Role.VIEWER),
        "developer": make_user("dev", service_team, Role.DEVELOPER),
        "maintainer": make_user("mai", service_team, Role.MAINTAINER),
        "admin": admin_user,
    }
    teams: dict[str, Team] = {"platform": platform_team, "service": service_team}
    failures = []
    for caller, expected in zip(CALLERS, statuses, strict=True):
        client = _client(caller, path, users, make_token, teams)
        if method == "POST" and path == URL:
            response = client.post(path, {"path": str(GOOD)}, format="json")
        elif method == "POST":
            response = client.post(path, {"path": str(GOOD)})
        else:
            response = client.get(path)
        if response.status_code != expected:
            failures.append(f"{caller}: {response.status_code} != {expected}")
        if path.startswith("/api/") and response.status_code >= 400:
            assert set(response.json()) >= {"detail", "code"}
    assert not failures, failures
    starts = 2 if path == URL and method == "POST" else (1 if method == "POST" else 0)
    assert AdvisoryImport.objects.count() == starts


# --- the page ---------------------------------------------------------------------------------


def test_the_page_lists_imports_with_counts_errors_and_the_job(
    import_roots, admin_user, django_assert_max_num_queries
) -> None:
    client = Client()
    client.force_login(admin_user)
    for source in (GOOD, FIXTURES / "bad"):
        response = client.post(PAGE, {"path": str(source)})
        assert response.status_code == 302
        job_id = int(response["Location"].rstrip("/").rsplit("/", 1)[-1])
        assert job_execute(job_id) == "succeeded"
    with django_assert_max_num_queries(12):
        page = client.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Advisory imports" in html and str(FIXTURES / "bad") in html
    assert "9 errors" in html and "no &#x27;modified&#x27;" in html
    for record in AdvisoryImport.objects.all():
        assert f'href="/jobs/{record.job_id}/"' in html


def test_the_page_uploads_and_refuses_bad_input(import_roots, admin_user, settings) -> None:
    client = Client()
    client.force_login(admin_user)
    data = (GOOD / "go/GO-2024-2687.json").read_bytes()
    response = client.post(PAGE, {"file": io.BytesIO(data)})
    assert response.status_code == 302
    assert job_execute(int(response["Location"].rstrip("/").rsplit("/", 1)[-1])) == "succeeded"
    assert Advisory.objects.filter(osv_id="GO-2024-2687").exists()
    refused = client.post(PAGE, {"path": "/etc/passwd"})
    assert (
        refused.status_code == 400
        and "outside the allowed import roots" in refused.content.decode()
    )
    both = client.post(PAGE, {"path": str(GOOD), "url": "http://x.internal/a.zip"})
    assert both.status_code == 400 and "exactly one source" in both.content.decode()
    settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES = 10
    too_big = client.post(PAGE, {"file": io.BytesIO(data)})
    assert too_big.status_code == 413 and "the limit is 10 bytes" in too_big.content.decode()
    assert AdvisoryImport.objects.count() == 1
