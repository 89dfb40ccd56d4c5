"""Bad input and headers (security review 2026-12: L1, L2, L4, L6, I2, I3).

Every request here used to be a 500 (or an insecure answer); each now gets a clear 400/404.
They run on PostgreSQL, where NUL characters in SQL literals and jsonb used to be DataErrors.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from deployments.models import Deployment
from images.registry import RegistryClient
from portal.choices import Role
from portal.models import ApiToken
from tests.conftest import PASSWORD
from tests.deployments.conftest import binary_store_dir  # noqa: F401 - a fixture used below
from tests.deployments.factories import EnvironmentFactory, ServiceFactory
from tests.images.factories import BaseImageFactory, ImageVersionFactory
from tests.images.test_registry import reply, serve

pytestmark = pytest.mark.django_db

ALL_SCOPES = [
    "images:read",
    "images:write",
    "images:review",
    "services:read",
    "services:write",
    "binaries:read",
    "binaries:write",
    "deployments:read",
    "deployments:write",
]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    assert connection.vendor == "postgresql", "these tests reproduce PostgreSQL behaviour"


@pytest.fixture
def admin_api(token_client, platform_team, admin_user):
    return token_client(platform_team, ALL_SCOPES)


@pytest.fixture
def dev_api(token_client, service_team, developer):
    return token_client(service_team, ALL_SCOPES[:2] + ALL_SCOPES[3:])


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= {"detail", "code"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


# --- L1: id filters ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["%C2%B2", "99999999999999999999", "-1", "1.0", "abc"])
def test_l1_release_deployment_filter_unicode_digits_and_overflow(admin_api, value):
    response = admin_api.get(f"/api/v1/releases/?deployment={value}")
    body = assert_json_error(response, 400, "invalid")
    assert "deployment" in body["detail"]


@pytest.mark.parametrize("value", ["%C2%B2", "99999999999999999999", "9223372036854775808"])
def test_l1_image_version_base_image_filter_unicode_digits_and_overflow(admin_api, value):
    response = admin_api.get(f"/api/v1/image-versions/?base_image={value}")
    body = assert_json_error(response, 400, "invalid")
    assert "base_image" in body["detail"]


def test_l1_id_filters_still_filter(admin_api):
    version = ImageVersionFactory(base_image=BaseImageFactory(name="runtime/x"))
    ImageVersionFactory(base_image=BaseImageFactory(name="runtime/y"))
    response = admin_api.get(f"/api/v1/image-versions/?base_image={version.base_image_id}")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [version.pk]
    assert admin_api.get("/api/v1/releases/?deployment=9223372036854775807").status_code == 200


def test_l1_image_version_state_nul_on_postgresql(admin_api):
    assert_json_error(admin_api.get("/api/v1/image-versions/?state=%00"), 400, "invalid")


# --- L1: deeply nested JSON ----------------------------------------------------------------

NESTED_TARGETS = [
    ("post", "/api/v1/services/"),
    ("post", "/api/v1/environments/"),
    ("post", "/api/v1/deployments/"),
    ("post", "/api/v1/image-requests/"),
]


@pytest.mark.parametrize(("method", "url"), NESTED_TARGETS)
def test_l1_deeply_nested_json_is_400(admin_api, method, url):
    body = "[" * 5000
    response = getattr(admin_api, method)(url, body, content_type="application/json")
    assert "nested deeper" in assert_json_error(response, 400, "parse_error")["detail"]


def test_l1_nested_json_over_depth_limit_but_valid_is_400(admin_api):
    body = json.dumps({"name": "x", "deep": _nest(70)})
    response = admin_api.post("/api/v1/services/", body, content_type="application/json")
    assert "nested deeper than 64" in assert_json_error(response, 400, "parse_error")["detail"]


def _nest(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_l1_deeply_nested_json_on_request_actions(admin_api, dev_api, service_team, developer):
    from images.models import ImageRequest

    common = {
        "name": "runtime/nested",
        "kind": "runtime",
        "os_family": "debian",
        "recipe_kind": "dockerfile",
        "recipe": "FROM scratch\n",
        "justification": "x",
        "team": service_team,
        "requested_by": developer,
    }
    draft = ImageRequest.objects.create(tag="1", state="draft", **common)
    submitted = ImageRequest.objects.create(tag="2", state="submitted", **common)
    cases = [
        (dev_api.patch, draft, ""),
        (dev_api.post, draft, "comment/"),
        (admin_api.post, submitted, "approve/"),
        (admin_api.post, submitted, "reject/"),
        (admin_api.post, submitted, "request-changes/"),
    ]
    for method, request, suffix in cases:
        url = f"/api/v1/image-requests/{request.pk}/{suffix}"
        response = method(url, "[" * 5000, content_type="application/json")
        assert_json_error(response, 400, "parse_error")
    assert ImageRequest.objects.get(pk=submitted.pk).state == "submitted"


# --- L1: NUL characters --------------------------------------------------------------------


def test_l1_nul_in_deployment_args_and_env_on_postgresql(dev_api, service_team):
    service = ServiceFactory(name="orders", team=service_team)
    EnvironmentFactory(name="prod", namespace="payments")
    runtime = ImageVersionFactory()
    base = {"service": service.name, "environment": "prod", "runtime_version": runtime.pk}
    for extra in (
        {"args": ["a\u0000b"]},
        {"env": [{"name": "GREETING", "value": "\u0000"}]},
        {"command": ["\u0000"]},
    ):
        response = dev_api.post("/api/v1/deployments/", {**base, **extra}, format="json")
        assert "NUL" in assert_json_error(response, 400, "parse_error")["detail"]
    assert Deployment.objects.count() == 0


def test_l1_nul_in_json_keys_is_400(dev_api):
    response = dev_api.post(
        "/api/v1/services/", '{"na\\u0000me": "x"}', content_type="application/json"
    )
    assert_json_error(response, 400, "parse_error")


@pytest.mark.parametrize("url", ["/jobs/?kind=%00", "/jobs/?state=%00&kind=a%00"])
def test_l1_nul_in_job_filters(client, developer, url):
    client.force_login(developer)
    response = client.get(url)
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.parametrize("url", ["/audit/?action=%00", "/audit/?actor=%00", "/audit/?%00=x"])
def test_l1_nul_in_audit_filters(client, admin_user, url):
    client.force_login(admin_user)
    assert client.get(url).status_code == 400


def test_l1_nul_in_environment_path(client, admin_user):
    client.force_login(admin_user)
    EnvironmentFactory(name="prod")
    assert client.get("/environments/a%00/").status_code == 400
    assert client.get("/environments/prod/").status_code == 200


def test_l1_nul_in_hostpath_sync_path(admin_api):
    response = admin_api.get("/api/v1/environments/a%00b/hostpath-sync.yaml")
    assert_json_error(response, 400, "invalid")


# --- L1: revoke=abc on the Tokens page ----------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "", "²", "99999999999999999999"])
def test_l1_tokens_page_revoke_not_an_id(client, developer, make_token, service_team, value):
    make_token(service_team, ["images:read"])
    client.force_login(developer)
    response = client.post("/tokens/", {"revoke": value})
    assert response.status_code == 400
    assert b"must be its id" in response.content
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1


def test_l1_tokens_page_revoke_unknown_id_is_404(client, developer):
    client.force_login(developer)
    assert client.post("/tokens/", {"revoke": "12345"}).status_code == 404


# --- L1: a jar with a strange central directory -------------------------------------------


def _jar_needing_version(version: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        archive.writestr("app/Main.class", b"\xca\xfe\xba\xbe")
    data = bytearray(buffer.getvalue())
    start = 0
    while (index := data.find(b"PK\x01\x02", start)) != -1:
        struct.pack_into("<H", data, index + 6, version)  # "version needed to extract"
        start = index + 4
    return bytes(data)


def test_l1_jar_with_strange_central_directory_is_400(
    token_client,
    service_team,
    binary_store_dir,  # noqa: F811 - the imported fixture
    tmp_path: Path,
):
    import hashlib

    ServiceFactory(name="orders", team=service_team, language="java")
    payload = _jar_needing_version(255)  # "version needed 25.5"
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(io.BytesIO(payload))
    path = tmp_path / "app.jar"
    path.write_bytes(payload)
    uploader = token_client(service_team, ["binaries:write", "binaries:read"])
    with path.open("rb") as fh:
        response = uploader.post(
            "/api/v1/services/orders/binaries/",
            {
                "file": fh,
                "version": "1.0.0",
                "arch": "x86_64",
                "sha256": hashlib.sha256(payload).hexdigest(),
            },
            format="multipart",
        )
    body = assert_json_error(response, 400)
    assert "zip" in body["detail"]


# --- Unknown API routes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/v1/nope/", "/api/v1/services/x/y/z/", "/api/v2/", "/api/v1/releases/1/nope/"]
)
def test_l1_unknown_api_route_is_json_404(admin_api, url):
    body = assert_json_error(admin_api.get(url), 404, "not_found")
    assert url in body["detail"]


def test_l1_api_slash_redirect_still_works(admin_api):
    assert admin_api.get("/api/v1/services").status_code == 301


# --- L2: anchored validators ---------------------------------------------------------------


def test_l2_env_name_with_trailing_newline_is_refused(dev_api, service_team):
    service = ServiceFactory(name="orders", team=service_team)
    EnvironmentFactory(name="prod", namespace="payments")
    runtime = ImageVersionFactory()
    response = dev_api.post(
        "/api/v1/deployments/",
        {
            "service": service.name,
            "environment": "prod",
            "runtime_version": runtime.pk,
            "env": [{"name": "J\n", "value": "x"}],
        },
        format="json",
    )
    assert_json_error(response, 400)
    assert Deployment.objects.count() == 0


def test_l2_manifest_checks_and_validators_use_end_of_string():
    from django.core.exceptions import ValidationError

    from deployments.manifests import checks
    from deployments.models import secret_name_validator, sha256_validator, version_validator
    from images.models import image_name_validator, tag_validator
    from portal.validators import DNS_LABEL, dns_label_validator

    assert checks._ENV_NAME.match("J\n") is None
    assert checks._ENV_NAME.match("J") is not None
    assert DNS_LABEL.match("payments\n") is None
    for validator, good in [
        (sha256_validator, "a" * 64),
        (version_validator, "1.4.2"),
        (secret_name_validator, "binary-fetch"),
        (image_name_validator, "runtime/debian"),
        (tag_validator, "12"),
        (dns_label_validator, "payments"),
    ]:
        validator(good)
        with pytest.raises(ValidationError):
            validator(good + "\n")


# --- L4: no-store where a secret is shown --------------------------------------------------


def test_l4_tokens_page_showing_a_secret_is_not_cached(client, developer, service_team):
    client.force_login(developer)
    response = client.post(
        "/tokens/",
        {"team": service_team.pk, "name": "ci", "scopes": ["images:read"], "expires_days": 30},
    )
    assert response.status_code == 200
    assert b"bip_" in response.content
    assert "no-store" in response["Cache-Control"]
    assert "no-store" in client.get("/tokens/")["Cache-Control"]


# --- L6: registry credentials only to the registry or a configured https token host --------


@contextmanager
def _token_service() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization"))
        reply(h, 200, b'{"token": "anonymous-token"}', {"Content-Type": "application/json"})

    with serve(handle) as url:
        yield url, seen


@contextmanager
def _registry_challenging(realm: str) -> Iterator[str]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == "Bearer anonymous-token":
            reply(h, 200, b"{}", {"Content-Type": "application/json"})
            return
        challenge = f'Bearer realm="{realm}",service="registry"'
        reply(h, 401, b"{}", {"WWW-Authenticate": challenge})

    with serve(handle) as url:
        yield url


def test_l6_credentials_not_sent_to_another_host_over_http():
    with _token_service() as (token_url, seen):
        # The same machine under another name: a different host to the client.
        realm = token_url.replace("127.0.0.1", "localhost") + "/token"
        with _registry_challenging(realm) as registry_url:
            client = RegistryClient(
                registry_url,
                username="robot",
                password="s3cret",
                token_hosts=[realm.split("/")[2], "localhost"],
            )
            assert client.ping()
    assert seen == [None], "the token was asked for anonymously"


def test_l6_credentials_follow_the_registry_origin():
    with _token_service() as (token_url, seen):
        with _registry_challenging(token_url + "/token") as registry_url:
            realm_registry = RegistryClient(registry_url, username="robot", password="s3cret")
            assert realm_registry.ping()
    # The token service is another port: another origin, plain http, so anonymous.
    assert seen == [None]
    client = RegistryClient("http://127.0.0.1:5000", username="robot", password="s3cret")
    assert client._may_send_credentials("http://127.0.0.1:5000/token")


def test_l6_https_token_hosts():
    client = RegistryClient(
        "https://registry.example.com",
        username="robot",
        password="s3cret",
        token_hosts=["auth.example.com"],
    )
    assert client._may_send_credentials("https://registry.example.com/service/token")
    assert client._may_send_credentials("https://auth.example.com/token")
    assert client._may_send_credentials("https://auth.example.com:443/token")
    assert not client._may_send_credentials("http://registry.example.com/service/token")
    assert not client._may_send_credentials("http://auth.example.com/token")
    assert not client._may_send_credentials("https://evil.example.com/token")
    assert not client._may_send_credentials("https://registry.example.com.evil.com/token")


# --- I2: X-Forwarded-Proto only behind a proxy ---------------------------------------------


def test_i2_forwarded_proto_ignored_unless_behind_proxy(monkeypatch):
    import importlib

    import portal.settings as portal_settings

    monkeypatch.delenv("PORTAL_BEHIND_PROXY", raising=False)
    assert importlib.reload(portal_settings).SECURE_PROXY_SSL_HEADER is None
    monkeypatch.setenv("PORTAL_BEHIND_PROXY", "1")
    assert importlib.reload(portal_settings).SECURE_PROXY_SSL_HEADER == (
        "HTTP_X_FORWARDED_PROTO",
        "https",
    )
    monkeypatch.delenv("PORTAL_BEHIND_PROXY")
    importlib.reload(portal_settings)


def test_i2_request_is_not_secure_from_a_client_header(rf, settings):
    from django.conf import settings as live

    assert live.SECURE_PROXY_SSL_HEADER is None
    request = rf.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()


# --- I3: Content-Security-Policy and login throttling -------------------------------------


def test_i3_csp_header(client, developer):
    client.force_login(developer)
    for url in ("/login/", "/tokens/", "/base-images/", "/jobs/"):
        response = client.get(url)
        policy = response.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy, url
        assert "script-src 'self'" in policy
        assert "object-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert b"onchange=" not in response.content and b"<script>" not in response.content


def test_i3_csp_header_on_api_docs(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert b"<script>" not in response.content


def test_i3_login_throttled(make_user, service_team, settings):
    settings.AXES_ENABLED = True
    make_user("paula", service_team, Role.DEVELOPER)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": "paula", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    last = client.post("/login/", {"username": "paula", "password": "wrong"})
    assert last.status_code == 429
    assert b"too many" in last.content.lower() or b"locked" in last.content.lower()
    locked = client.post("/login/", {"username": "paula", "password": PASSWORD})
    assert locked.status_code == 429
    # Per username and IP: the same user from another address still logs in.
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert other.post("/login/", {"username": "paula", "password": PASSWORD}).status_code == 302


def test_i3_login_success_resets_the_count(make_user, service_team, settings):
    make_user("quinn", service_team, Role.DEVELOPER)
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "quinn", "password": "wrong"})
    assert client.post("/login/", {"username": "quinn", "password": PASSWORD}).status_code == 302
    client.logout()
    client.post("/login/", {"username": "quinn", "password": "wrong"})
    assert client.post("/login/", {"username": "quinn", "password": PASSWORD}).status_code == 302
