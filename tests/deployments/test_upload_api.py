"""Binary upload through the API: streamed, hashed, stored by hash, all-or-nothing."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest

from deployments.models import BinaryVersion, Service
from portal.models import AuditEntry
from tests.deployments.conftest import stored_files
from tests.deployments.factories import BinaryVersionFactory, ServiceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/services/orders/binaries/"
BOUNDARY = "----portal-test-boundary"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def uploader(token_client, service_team):
    return token_client(service_team, ["binaries:write", "binaries:read"])


@pytest.fixture
def store(binary_store_dir):
    return binary_store_dir


def post_file(client, path: Path, url: str = URL, **fields: str):
    data = {"version": "1.0.0", "arch": "x86_64", "sha256": sha256_of(path), **fields}
    with path.open("rb") as fh:
        return client.post(url, {"file": fh, **data}, format="multipart")


def assert_nothing_kept(store) -> None:
    assert BinaryVersion.objects.count() == 0
    assert stored_files(store["root"]) == []
    assert list(store["temp"].iterdir()) == []


def multipart(fields: dict[str, str], content: bytes, filename: str = "application") -> bytes:
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    out.write(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    out.write(content + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def raw_post(client, body: bytes, stream: io.BytesIO | None = None, **meta: str):
    """POST `body` as multipart with full control over CONTENT_LENGTH and the input stream."""
    extra = {"CONTENT_LENGTH": str(len(body)), "wsgi.input": stream or io.BytesIO(body)}
    extra.update(meta)
    return client.generic(
        "POST", URL, body, content_type=f"multipart/form-data; boundary={BOUNDARY}", **extra
    )


# --- happy paths ----------------------------------------------------------------------------


def test_upload_dynamic_elf_is_stored_under_its_hash(uploader, orders, store, elf_files):
    path = elf_files["hello"]
    digest = sha256_of(path)
    response = post_file(uploader, path, commit="abc1234", build_url="https://ci.example.com/1")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sha256"] == digest
    assert body["size"] == path.stat().st_size
    assert body["file_type"] == "elf"
    assert body["linkage"] == "dynamic"
    assert body["interpreter"] == "/lib64/ld-linux-x86-64.so.2"
    assert body["needed"] == ["libc.so.6"]
    assert body["min_glibc"].startswith("2.")
    assert body["libc"] == "glibc"
    assert body["arch"] == "x86_64"
    assert body["filename"] == "hello"
    assert body["uploaded_by"].startswith("token:")
    stored = store["root"] / "binaries" / "sha256" / digest[:2] / digest
    assert stored_files(store["root"]) == [stored]
    assert stored.read_bytes() == path.read_bytes()
    assert list(store["temp"].iterdir()) == []
    row = BinaryVersion.objects.get()
    assert row.file == f"binaries/sha256/{digest[:2]}/{digest}"
    assert AuditEntry.objects.filter(action="binary_version.upload").count() == 1


def test_upload_static_and_shared_library_dependency(uploader, orders, store, elf_files):
    static = post_file(uploader, elf_files["hello-static"], version="1.0.0").json()
    assert (static["linkage"], static["interpreter"], static["needed"]) == ("static", "", [])
    usefoo = post_file(uploader, elf_files["usefoo"], version="1.0.1", arch="amd64").json()
    assert usefoo["arch"] == "x86_64"  # amd64 is an alias
    assert usefoo["needed"] == ["libfoo.so", "libc.so.6"]


def test_non_elf_files_are_accepted_and_marked(uploader, orders, store, tmp_path):
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho hello\n")
    body = post_file(uploader, script, arch="noarch").json()
    assert (body["file_type"], body["linkage"], body["arch"]) == ("script", "", "noarch")


def test_same_bytes_again_is_200_other_bytes_409(uploader, orders, store, elf_files):
    assert post_file(uploader, elf_files["hello"]).status_code == 201
    again = post_file(uploader, elf_files["hello"])
    assert again.status_code == 200
    assert BinaryVersion.objects.count() == 1
    other = post_file(uploader, elf_files["usefoo"])
    assert other.status_code == 409
    assert other.json()["code"] == "duplicate"
    assert "versions are immutable" in other.json()["detail"]
    assert BinaryVersion.objects.count() == 1
    assert len(stored_files(store["root"])) == 1
    assert list(store["temp"].iterdir()) == []


def test_two_versions_with_the_same_bytes_share_one_file(uploader, orders, store, elf_files):
    post_file(uploader, elf_files["hello"], version="1.0.0")
    post_file(uploader, elf_files["hello"], version="1.0.1")
    assert BinaryVersion.objects.count() == 2
    assert len(stored_files(store["root"])) == 1


def test_download_streams_with_checksum_headers(
    token_client, service_team, uploader, orders, store, elf_files
):
    path = elf_files["hello"]
    binary_id = post_file(uploader, path).json()["id"]
    reader = token_client(service_team, ["binaries:read"])
    response = reader.get(f"/api/v1/binaries/{binary_id}/download/")
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == path.read_bytes()
    digest = sha256_of(path)
    assert response["X-Checksum-Sha256"] == digest
    assert response["Digest"] == "sha-256=" + base64.b64encode(bytes.fromhex(digest)).decode()
    no_scope = token_client(service_team, ["services:read"])
    assert no_scope.get(f"/api/v1/binaries/{binary_id}/download/").status_code == 403


# --- failures: clear error, no row, no stored file, no temp file -----------------------------


def test_wrong_sha256_is_400_and_keeps_nothing(uploader, orders, store, elf_files):
    response = post_file(uploader, elf_files["hello"], sha256="0" * 64)
    assert response.status_code == 400
    assert "Checksum mismatch" in response.json()["detail"]
    assert sha256_of(elf_files["hello"]) in response.json()["detail"]
    assert_nothing_kept(store)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": ""}, "Give the version"),
        ({"version": "../1"}, "is not a version"),
        ({"arch": "sparc-ish"}, "Unknown architecture"),
        ({"arch": "aarch64"}, "is a x86_64 ELF binary, but arch says aarch64"),
        ({"sha256": "xyz"}, "is not a sha256"),
        ({"build_url": "ftp://x"}, "is not an http(s) URL"),
        ({"artifact_ref": "registry/bin:latest"}, "digest-pinned"),
    ],
)
def test_bad_fields_are_400_and_keep_nothing(uploader, orders, store, elf_files, fields, message):
    response = post_file(uploader, elf_files["hello"], **fields)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert_nothing_kept(store)


def test_missing_file_and_corrupt_elf_are_400(uploader, orders, store, elf_files, tmp_path):
    response = uploader.post(
        URL, {"version": "1", "arch": "x86_64", "sha256": "0" * 64}, format="multipart"
    )
    assert response.status_code == 400
    assert "Attach the binary" in response.json()["detail"]
    broken = tmp_path / "broken"
    broken.write_bytes(elf_files["hello"].read_bytes()[:200])
    response = post_file(uploader, broken)
    assert response.status_code == 400
    assert "truncated or corrupt ELF" in response.json()["detail"]
    assert_nothing_kept(store)


def test_oversized_content_length_is_413_before_reading(uploader, orders, store, settings):
    settings.PORTAL_BINARY_MAX_BYTES = 1000
    body = multipart({"version": "1", "arch": "x86_64", "sha256": "0" * 64}, b"x" * 10)
    stream = io.BytesIO(body)
    response = raw_post(uploader, body, stream, CONTENT_LENGTH=str(5 * 1024 * 1024))
    assert response.status_code == 413
    assert "larger than the limit of 1000 bytes" in response.json()["detail"]
    assert stream.tell() == 0  # refused from the header alone
    assert_nothing_kept(store)


def test_file_part_over_the_limit_is_413_during_the_stream(
    uploader, orders, store, settings, elf_files
):
    # Content-Length passes the header check (limit + multipart allowance), the file does not.
    settings.PORTAL_BINARY_MAX_BYTES = 4096
    content = elf_files["hello"].read_bytes()
    assert len(content) > 4096
    body = multipart(
        {"version": "1", "arch": "x86_64", "sha256": hashlib.sha256(content).hexdigest()}, content
    )
    response = raw_post(uploader, body)
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]
    assert_nothing_kept(store)


def test_chunked_body_without_length_is_411(uploader, orders, store):
    body = multipart({"version": "1", "arch": "x86_64", "sha256": "0" * 64}, b"abc")
    response = raw_post(uploader, body, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert_nothing_kept(store)


def test_truncated_body_is_400_and_keeps_nothing(uploader, orders, store, elf_files):
    content = elf_files["hello"].read_bytes()
    body = multipart(
        {"version": "1", "arch": "x86_64", "sha256": hashlib.sha256(content).hexdigest()}, content
    )
    # The client announced the whole body but the connection ended half way through the file.
    cut = io.BytesIO(body[: len(body) // 2])
    response = raw_post(uploader, body, cut)
    assert response.status_code == 400
    assert "truncated request body" in response.json()["detail"]
    assert_nothing_kept(store)


def test_bytes_beyond_content_length_are_never_read(uploader, orders, store, elf_files):
    content = elf_files["hello"].read_bytes()
    body = multipart(
        {"version": "1", "arch": "x86_64", "sha256": hashlib.sha256(content).hexdigest()}, content
    )
    declared = len(body) - 600  # a lying (short) Content-Length: the file part is cut
    stream = io.BytesIO(body + b"x" * 10_000_000)
    response = raw_post(uploader, body, stream, CONTENT_LENGTH=str(declared))
    assert response.status_code == 400
    assert stream.tell() == declared
    assert_nothing_kept(store)


def test_wrong_team_is_403(token_client, make_user, api, orders, store, elf_files):
    from deployments.models import Team

    other = Team.objects.create(name="search")
    response = post_file(token_client(other, ["binaries:write"]), elf_files["hello"])
    assert response.status_code == 403
    assert "only team payments" in response.json()["detail"]
    user = make_user("sam", other, "maintainer")
    api.force_authenticate(user)
    response = post_file(api, elf_files["hello"])
    assert response.status_code == 403
    assert_nothing_kept(store)


def test_viewer_of_the_team_is_403(make_user, api, service_team, orders, store, elf_files):
    api.force_authenticate(make_user("vic", service_team, "viewer"))
    response = post_file(api, elf_files["hello"])
    assert response.status_code == 403
    assert_nothing_kept(store)


def test_developer_session_user_may_upload(api, developer, orders, store, elf_files):
    api.force_authenticate(developer)
    response = post_file(api, elf_files["hello"])
    assert response.status_code == 201
    assert response.json()["uploaded_by"] == "dave-dev"


def test_token_without_binaries_write_is_403(token_client, service_team, orders, store, elf_files):
    response = post_file(token_client(service_team, ["binaries:read"]), elf_files["hello"])
    assert response.status_code == 403
    assert "binaries:write" in response.json()["detail"]
    assert_nothing_kept(store)


def test_unknown_service_is_404(uploader, store, elf_files):
    response = post_file(uploader, elf_files["hello"], url="/api/v1/services/nope/binaries/")
    assert response.status_code == 404
    assert "No service named 'nope'" in response.json()["detail"]
    assert_nothing_kept(store)


@pytest.mark.parametrize("name", ["..", "orders..", "Orders", "a%2e%2e", "-x"])
def test_service_name_with_path_characters_is_400(uploader, orders, store, elf_files, name):
    response = post_file(uploader, elf_files["hello"], url=f"/api/v1/services/{name}/binaries/")
    assert response.status_code == 400
    assert "is not a service name" in response.json()["detail"]
    assert_nothing_kept(store)


@pytest.mark.parametrize("path", ["../etc", "..%2F..%2Fetc", "orders/../x"])
def test_service_name_with_slashes_matches_no_route(uploader, orders, store, elf_files, path):
    response = post_file(uploader, elf_files["hello"], url=f"/api/v1/services/{path}/binaries/")
    assert response.status_code == 404
    assert_nothing_kept(store)


def test_failed_row_write_removes_the_stored_file(uploader, orders, store, elf_files, monkeypatch):
    from portal import audit

    def broken_audit(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("deployments.services.audit_record", broken_audit)
    assert audit.audit_record is not broken_audit
    with pytest.raises(RuntimeError):
        post_file(uploader, elf_files["hello"])
    assert_nothing_kept(store)


def test_failed_row_write_keeps_a_file_other_rows_use(
    uploader, orders, store, elf_files, monkeypatch
):
    assert post_file(uploader, elf_files["hello"], version="1.0.0").status_code == 201
    monkeypatch.setattr(
        "deployments.services.audit_record",
        lambda **kw: (_ for _ in ()).throw(RuntimeError("boom")),
    )
    with pytest.raises(RuntimeError):
        post_file(uploader, elf_files["hello"], version="1.0.1")
    assert BinaryVersion.objects.count() == 1
    assert len(stored_files(store["root"])) == 1


# --- lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 50])
def test_binary_list_query_count_is_constant(
    token_client, service_team, orders, store, django_assert_max_num_queries, size
):
    from tests.deployments.factories import DeploymentFactory

    for index in range(60):
        bv = BinaryVersionFactory(service=orders)
        if index % 10 == 0:
            DeploymentFactory(
                service=orders,
                binary_version=bv,
                environment__name=f"env{index}",
                environment__namespace=f"ns{index}",
            )
    reader = token_client(service_team, ["binaries:read"])
    reader.get(URL)
    with django_assert_max_num_queries(5):  # token, service, count, page, deployments
        response = reader.get(URL, {"page_size": size})
    assert len(response.json()["results"]) == size
    deployed = [
        r for r in reader.get(URL, {"page_size": 100}).json()["results"] if r["deployed_in"]
    ]
    assert len(deployed) == 6
    with django_assert_max_num_queries(4):
        assert reader.get("/api/v1/binaries/", {"page_size": size}).status_code == 200


@pytest.mark.parametrize("size", [5, 50])
def test_service_list_query_count_is_constant(
    token_client, service_team, django_assert_max_num_queries, size
):
    for _ in range(60):
        BinaryVersionFactory(service=ServiceFactory())
    reader = token_client(service_team, ["services:read"])
    reader.get("/api/v1/services/")
    with django_assert_max_num_queries(3):  # token, count, page
        response = reader.get("/api/v1/services/", {"page_size": size})
    assert len(response.json()["results"]) == size
    assert response.json()["results"][0]["version_count"] == 1


def test_binary_list_filters(token_client, service_team, orders):
    BinaryVersionFactory(service=orders, version="2.0.0", arch="aarch64")
    BinaryVersionFactory(service=orders, version="1.0.0", state="yanked")
    reader = token_client(service_team, ["binaries:read"])
    versions = lambda r: [b["version"] for b in r.json()["results"]]  # noqa: E731
    assert versions(reader.get(URL, {"arch": "aarch64"})) == ["2.0.0"]
    assert versions(reader.get(URL, {"state": "yanked"})) == ["1.0.0"]
    assert versions(reader.get(URL, {"q": "2.0"})) == ["2.0.0"]
    assert reader.get(URL, {"state": "gone"}).status_code == 400


def test_create_service_via_api(token_client, service_team):
    writer = token_client(service_team, ["services:write"])
    response = writer.post("/api/v1/services/", {"name": "ledger", "language": "go"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["team"] == "payments"
    assert writer.post("/api/v1/services/", {"name": "ledger"}, format="json").status_code == 409
    bad = writer.post("/api/v1/services/", {"name": "Bad_Name"}, format="json")
    assert bad.status_code == 400
    assert "DNS-1123" in bad.json()["detail"]
