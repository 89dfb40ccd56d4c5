"""images.registry against Debian's docker-registry, checked with skopeo."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench.support import free_port
from images.builder import BuilderConfig
from images.registry import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
    parse_challenge,
    parse_created,
)
from images.registry import transport as registry_transport
from tests.fixtures.registry import LocalRegistry

pytestmark = pytest.mark.usefixtures("running_registry")


def skopeo_inspect(reference: str, *, raw: bool = False, config: bool = False) -> dict:
    argv = ["skopeo", "inspect", "--tls-verify=false"]
    if raw:
        argv.append("--raw")
    if config:
        argv.append("--config")
    out = subprocess.run(  # noqa: S603 - fixed argument list
        [*argv, f"docker://{reference}"], capture_output=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


def put_manifest(registry: LocalRegistry, repo: str, ref: str, body: bytes, media: str) -> str:
    response = requests.put(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        data=body,
        headers={"Content-Type": media},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def copy_image(registry: LocalRegistry, source: str, target: str, digest: str) -> None:
    """Cross-repository mount an image's blobs and manifest (cheap: no data is copied)."""
    raw = requests.get(
        f"{registry.url}/v2/{source}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    manifest = raw.json()
    for blob in [manifest["config"], *manifest["layers"]]:
        response = requests.post(
            f"{registry.url}/v2/{target}/blobs/uploads/",
            params={"mount": blob["digest"], "from": source},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    put_manifest(registry, target, digest, raw.content, manifest["mediaType"])


@pytest.fixture(scope="module")
def base(debian_base_image: tuple[str, str]) -> tuple[str, str]:
    return debian_base_image


@pytest.fixture
def client(oci_registry: LocalRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(oci_registry.url, timeout=5) as c:
        yield c


# --- a real registry ----------------------------------------------------------------------


def test_ping(client: RegistryClient) -> None:
    assert client.ping() is True


def test_lists_repositories_and_tags(client: RegistryClient, base: tuple[str, str]) -> None:
    assert "runtime/debian" in client.list_repositories()
    assert "12" in client.list_tags("runtime/debian")


def test_manifest_info_matches_skopeo(client: RegistryClient, base: tuple[str, str]) -> None:
    reference, pushed_digest = base
    info = client.manifest_info("runtime/debian", "12")
    inspected = skopeo_inspect(reference)
    assert info.digest == inspected["Digest"] == pushed_digest
    assert info.architecture == inspected["Architecture"] == "amd64"
    assert info.os == inspected["Os"] == "linux"
    raw = skopeo_inspect(reference, raw=True)
    manifest_bytes = subprocess.run(  # noqa: S603
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    expected = len(manifest_bytes) + raw["config"]["size"] + sum(la["size"] for la in raw["layers"])
    assert info.size == expected
    assert info.media_type == raw["mediaType"]
    assert info.created is not None
    assert datetime.now(UTC) - info.created < timedelta(days=1)
    assert info.platforms == ()


def test_manifest_info_by_digest(client: RegistryClient, base: tuple[str, str]) -> None:
    _, digest = base
    by_tag = client.manifest_info("runtime/debian", "12")
    assert client.manifest_info("runtime/debian", digest) == by_tag


def test_pagination_follows_link_headers(
    client: RegistryClient,
    oci_registry: LocalRegistry,
    base: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, media, digest = client.get_manifest("runtime/debian", "12")
    copy_image(oci_registry, "runtime/debian", "paged/debian", digest)
    tags = [f"page-{i}" for i in range(7)]
    for tag in tags:
        put_manifest(oci_registry, "paged/debian", tag, data, media)
    monkeypatch.setattr(registry_transport, "PAGE_SIZE", 2)
    assert sorted(client.list_tags("paged/debian")) == sorted(tags)
    assert {"paged/debian", "runtime/debian"} <= set(client.list_repositories())
    with pytest.raises(RegistryError, match="more than 3 entries"):
        client.list_tags("paged/debian", limit=3)


def test_manifest_list_built_by_buildah_keeps_index_digest(
    client: RegistryClient,
    oci_registry: LocalRegistry,
    buildah_config: BuilderConfig,
    base: tuple[str, str],
) -> None:
    reference, image_digest = base
    listed = "localhost/bip-test-list"
    target = f"{oci_registry.host}/multi/debian:12"
    run = [*buildah_config.buildah_argv()]
    for args in (
        ["manifest", "create", listed],
        ["manifest", "add", "--tls-verify=false", listed, f"docker://{reference}"],
        ["manifest", "push", "--all", "--tls-verify=false", listed, f"docker://{target}"],
    ):
        subprocess.run([*run, *args], check=True, capture_output=True, timeout=300)  # noqa: S603
    info = client.manifest_info("multi/debian", "12")
    inspected = skopeo_inspect(target, raw=True)
    assert inspected["mediaType"] in (OCI_INDEX, DOCKER_MANIFEST_LIST)
    assert info.media_type == inspected["mediaType"]
    index_bytes = subprocess.run(  # noqa: S603
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert info.digest == "sha256:" + hashlib.sha256(index_bytes).hexdigest()
    assert info.digest != image_digest
    assert (info.architecture, info.os) == ("amd64", "linux")
    assert info.platforms == ("linux/amd64",)


def test_index_picks_linux_amd64_among_platforms(
    client: RegistryClient, oci_registry: LocalRegistry, base: tuple[str, str]
) -> None:
    data, media, digest = client.get_manifest("runtime/debian", "12")
    copy_image(oci_registry, "runtime/debian", "plat/debian", digest)
    entry = {"mediaType": media, "digest": digest, "size": len(data)}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**entry, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {**entry, "platform": {"os": "linux", "architecture": "amd64"}},
            {**entry, "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }
    body = json.dumps(index).encode()
    index_digest = put_manifest(oci_registry, "plat/debian", "multi", body, OCI_INDEX)
    info = client.manifest_info("plat/debian", "multi")
    assert info.digest == index_digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert info.platforms == ("linux/arm64/v8", "linux/amd64")
    assert info.architecture == "amd64"
    single = client.manifest_info("plat/debian", digest)
    assert info.size == len(body) + single.size


def test_unknown_repository_and_tag(client: RegistryClient, base: tuple[str, str]) -> None:
    with pytest.raises(RegistryNotFound, match=r"no/such:latest: not found \(HTTP 404\)"):
        client.manifest_info("no/such", "latest")
    with pytest.raises(RegistryNotFound, match="runtime/debian:nope.*MANIFEST_UNKNOWN"):
        client.manifest_info("runtime/debian", "nope")
    with pytest.raises(RegistryNotFound, match="NAME_UNKNOWN"):
        client.list_tags("no/such")


@pytest.mark.parametrize(
    ("repo", "ref", "message"),
    [
        ("UPPER/case", "1", "invalid repository name"),
        ("", "1", "invalid repository name"),
        ("a/../b", "1", "invalid repository name"),
        ("runtime/debian", "bad tag", "invalid tag or digest"),
        ("runtime/debian", "sha256:1234", "invalid tag or digest"),
        ("runtime/debian", "x" * 129, "invalid tag or digest"),
    ],
)
def test_bad_names_are_rejected_before_any_request(
    client: RegistryClient, repo: str, ref: str, message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        client.manifest_info(repo, ref)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:5000", "expected http"),
        ("ftp://host", "expected http"),
        ("https://host/v2/", "no path"),
        ("", "expected http"),
    ],
)
def test_bad_registry_url(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        RegistryClient(url)


def test_half_credentials_rejected() -> None:
    with pytest.raises(RegistryError, match="both a registry username and a password"):
        RegistryClient("http://127.0.0.1:1", username="u")


def test_registry_down_is_unavailable(
    oci_registry: LocalRegistry, client: RegistryClient, base: tuple[str, str]
) -> None:
    with oci_registry.down():
        with pytest.raises(RegistryUnavailable, match="registry unreachable"):
            client.ping()
        with pytest.raises(RegistryUnavailable):
            client.manifest_info("runtime/debian", "12")
    assert client.manifest_info("runtime/debian", "12").digest == base[1]


def test_nothing_listening_is_unavailable() -> None:
    with pytest.raises(RegistryUnavailable):
        RegistryClient(f"http://127.0.0.1:{free_port()}", timeout=2).list_tags("a/b")


# --- hand-made servers for auth and misbehaviour --------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Serve GET requests with `handler` on a free local port; yield the base URL."""

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            handler(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
    h.send_response(status)
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def proxy(h: BaseHTTPRequestHandler, upstream: str) -> None:
    """Forward a GET to the real registry, keeping status, body and digest headers."""
    response = requests.get(
        upstream + h.path, headers={"Accept": h.headers.get("Accept", "*/*")}, timeout=10
    )
    keep = ("Content-Type", "Docker-Content-Digest", "Link")
    reply(
        h,
        response.status_code,
        response.content,
        {k: response.headers[k] for k in keep if k in response.headers},
    )


@contextmanager
def bearer_registry(upstream: str, user: str, password: str) -> Iterator[tuple[str, list[str]]]:
    """A Harbor-like front: /v2/ demands a Bearer token from /service/token (basic auth)."""
    scopes: list[str] = []
    good_basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        host = h.headers["Host"]
        if h.path.startswith("/service/token"):
            if h.headers.get("Authorization") != good_basic:
                reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}')
                return
            query = dict(p.split("=", 1) for p in h.path.split("?", 1)[1].split("&"))
            scope = requests.utils.unquote(query.get("scope", ""))
            scopes.append(scope)
            reply(h, 200, json.dumps({"token": f"tok|{scope}"}).encode())
            return
        scope = ""  # what Harbor would demand for this path
        if h.path.startswith("/v2/_catalog"):
            scope = "registry:catalog:*"
        elif h.path != "/v2/":
            scope = f"repository:{h.path[len('/v2/') :].rsplit('/', 2)[0]}:pull"
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer tok|") or (scope and auth != f"Bearer tok|{scope}"):
            challenge = f'Bearer realm="http://{host}/service/token",service="harbor-registry"'
            if scope:
                challenge += f',scope="{scope}"'
            reply(
                h,
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
            )
            return
        proxy(h, upstream)

    with serve(handle) as url:
        yield url, scopes


def test_bearer_token_challenge(oci_registry: LocalRegistry, base: tuple[str, str]) -> None:
    with bearer_registry(oci_registry.url, "robot$ci", "s3cret") as (url, scopes):
        client = RegistryClient(url, username="robot$ci", password="s3cret")
        assert client.ping()
        assert "12" in client.list_tags("runtime/debian")
        info = client.manifest_info("runtime/debian", "12")
        assert info.digest == base[1]
        assert "repository:runtime/debian:pull" in scopes
        assert "registry:catalog:*" not in scopes
        assert "runtime/debian" in client.list_repositories()
        assert "registry:catalog:*" in scopes
        # The token is cached per scope: reading again asks the token service nothing more.
        asked = len(scopes)
        client.manifest_info("runtime/debian", "12")
        assert len(scopes) == asked


def test_bearer_wrong_password(oci_registry: LocalRegistry) -> None:
    with bearer_registry(oci_registry.url, "robot", "right") as (url, _):
        client = RegistryClient(url, username="robot", password="wrong")
        with pytest.raises(RegistryAuthError, match="token service refused the credentials"):
            client.list_tags("runtime/debian")


def test_basic_auth(oci_registry: LocalRegistry, base: tuple[str, str]) -> None:
    good = "Basic " + base64.b64encode(b"alice:pw").decode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") != good:
            reply(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="registry"'})
            return
        proxy(h, oci_registry.url)

    with serve(handle) as url:
        assert (
            RegistryClient(url, username="alice", password="pw")
            .manifest_info("runtime/debian", "12")
            .digest
            == base[1]
        )
        with pytest.raises(RegistryAuthError, match="credentials refused"):
            RegistryClient(url, username="alice", password="no").ping()
        with pytest.raises(RegistryAuthError, match="authentication required"):
            RegistryClient(url).ping()


def test_forbidden(oci_registry: LocalRegistry) -> None:
    with serve(lambda h: reply(h, 403, b'{"errors":[{"code":"DENIED","message":"no"}]}')) as url:
        with pytest.raises(RegistryAuthError, match=r"access denied \(HTTP 403\): DENIED: no"):
            RegistryClient(url).list_tags("a/b")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_transient(status: int) -> None:
    with serve(lambda h: reply(h, status, b"busy")) as url:
        with pytest.raises(RegistryUnavailable, match=f"HTTP {status}, try again later"):
            RegistryClient(url).list_tags("a/b")


def test_invalid_json_is_a_clear_error() -> None:
    with serve(lambda h: reply(h, 200, b"<html>not json</html>")) as url:
        with pytest.raises(RegistryError, match="tags of a/b: invalid JSON"):
            RegistryClient(url).list_tags("a/b")


def test_digest_header_mismatch_is_detected() -> None:
    wrong = "sha256:" + "0" * 64
    manifest = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        reply(h, 200, manifest, {"Docker-Content-Digest": wrong})

    with serve(handle) as url:
        with pytest.raises(RegistryError, match="but the registry claims"):
            RegistryClient(url).manifest_info("a/b", "1")


def test_schema1_manifest_is_refused() -> None:
    body = json.dumps({"schemaVersion": 1, "name": "a/b", "fsLayers": []}).encode()
    media = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    with serve(lambda h: reply(h, 200, body, {"Content-Type": media})) as url:
        with pytest.raises(RegistryError, match="schema 1 images are not supported"):
            RegistryClient(url).manifest_info("a/b", "1")


def test_pagination_to_another_host_is_refused() -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        link = '<http://evil.example/v2/a/b/tags/list?n=1&last=x>; rel="next"'
        reply(h, 200, b'{"name":"a/b","tags":["1"]}', {"Link": link})

    with serve(handle) as url:
        with pytest.raises(RegistryError, match="refusing to follow a link to another host"):
            RegistryClient(url).list_tags("a/b")


def test_pagination_loop_is_refused() -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        link = '</v2/a/b/tags/list?n=1000>; rel="next"'
        reply(h, 200, b'{"name":"a/b","tags":["1"]}', {"Link": link})

    with serve(handle) as url:
        with pytest.raises(RegistryError, match="pagination loops"):
            RegistryClient(url).list_tags("a/b")


def test_timeout_is_unavailable() -> None:
    release = threading.Event()

    def handle(h: BaseHTTPRequestHandler) -> None:
        release.wait(5)
        reply(h, 200, b"{}")

    with serve(handle) as url:
        try:
            with pytest.raises(RegistryUnavailable, match="unreachable"):
                RegistryClient(url, timeout=0.5).ping()
        finally:
            release.set()


def test_parse_challenge_and_created() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://h/service/token",service="harbor-registry",'
        'scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://h/service/token",
        "service": "harbor-registry",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_created("2024-05-01T10:20:30.123456789Z") == datetime(
        2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC
    )
    assert parse_created("2024-05-01T18:20:30+08:00") == datetime(
        2024, 5, 1, 10, 20, 30, tzinfo=UTC
    )
    assert parse_created("0001-01-01T00:00:00Z") is None
    assert parse_created("yesterday") is None
    assert parse_created(None) is None
