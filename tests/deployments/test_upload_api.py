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
    from portal.models import Team

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

    monkeypatch.setattr("deployments.services.binaries.audit_record", broken_audit)
    assert audit.audit_record is not broken_audit
    with pytest.raises(RuntimeError):
        post_file(uploader, elf_files["hello"])
    assert_nothing_kept(store)


def test_failed_row_write_keeps_a_file_other_rows_use(
    uploader, orders, store, elf_files, monkeypatch
):
    assert post_file(uploader, elf_files["hello"], version="1.0.0").status_code == 201
    monkeypatch.setattr(
        "deployments.services.binaries.audit_record",
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
    # token, count, the page's ids, then its annotated rows (subqueries run for the page only)
    with django_assert_max_num_queries(4):
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


# --- the multipart parser of BinaryUploadHandler --------------------------------------------


def parse(body: bytes, block_size: int | None = None, stream=None):
    """Run the upload handler on `body` directly; (handler, POST, FILES)."""
    from deployments.uploads import BinaryUploadHandler

    handler = BinaryUploadHandler()
    if block_size is not None:
        handler.block_size = block_size
    post, files = handler.handle_raw_input(
        stream or io.BytesIO(body), {}, len(body), BOUNDARY.encode(), "utf-8"
    )
    return handler, post, files


def file_part(content: bytes, name: str = "file", filename: str = "app") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode() + content


def field_part(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()


def join(*parts: bytes, close: bytes = f"\r\n--{BOUNDARY}--\r\n".encode()) -> bytes:
    return b"\r\n".join(parts) + close


# Data that looks like the start of a delimiter, CR/LF runs, and a boundary without CRLF.
TRICKY = (
    b"\r\n--"
    + BOUNDARY.encode()[:-1]
    + b"\r\n\r\n\r--\n--"
    + BOUNDARY.encode()
    + b"\r\r\n-"
    + bytes(range(256)) * 3
    + b"\r\n--"
    + BOUNDARY.encode()[:5]
)


@pytest.mark.parametrize("block_size", [None, 1, 250, 251, 263, 300, 333, 512, 1000])
def test_parser_round_trips_data_split_at_any_block_edge(store, block_size):
    content = TRICKY * 4 + b"\r\n"
    body = join(field_part("version", "1.2.3"), file_part(content), field_part("arch", "x86_64"))
    handler, post, files = parse(body, block_size)
    upload = files["file"]
    assert upload.read() == content
    assert upload.size == len(content)
    assert upload.sha256 == hashlib.sha256(content).hexdigest()
    assert upload.name == "app"
    assert upload.content_type == "application/octet-stream"
    assert (post["version"], post["arch"]) == ("1.2.3", "x86_64")  # a field after the file
    assert not handler.interrupted
    upload.close()
    assert list(store["temp"].iterdir()) == []


def test_parser_every_block_size_around_the_delimiter(store):
    content = b"x" * 700 + b"\r\n-" + b"y" * 50
    body = join(file_part(content), field_part("sha256", "abc"))
    for block_size in range(248, 248 + 2 * 40):  # the delimiter lands on every offset
        _, post, files = parse(body, block_size)
        assert files["file"].read() == content, block_size
        assert post["sha256"] == "abc"
        files["file"].close()


def test_parser_ignores_preamble_and_epilogue(store):
    body = b"This is a preamble.\r\n" + join(
        field_part("version", "1"),
        file_part(b"data"),
        close=f"\r\n--{BOUNDARY}--\r\nand an epilogue\r\n--{BOUNDARY}\r\n".encode(),
    )
    _, post, files = parse(body, 256)
    assert post["version"] == "1"
    assert files["file"].read() == b"data"
    files["file"].close()


def test_parser_accepts_an_empty_file_and_transport_padding(store):
    body = join(field_part("version", "1"), file_part(b"")).replace(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file'.encode(),
        f'--{BOUNDARY} \t\r\nContent-Disposition: form-data; name="file'.encode(),
    )
    _, post, files = parse(body)
    upload = files["file"]
    assert (upload.size, upload.read()) == (0, b"")
    assert upload.sha256 == hashlib.sha256(b"").hexdigest()
    upload.close()


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 40, 41, 42, 43, 64, 100, None])
def test_parser_transport_padding_split_at_any_block_edge(store, block_size):
    body = join(field_part("version", "1"), file_part(b"data"), field_part("arch", "x86_64"))
    body = body.replace(f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY} \t \r\n".encode())
    _, post, files = parse(body, block_size)
    assert (post["version"], post["arch"]) == ("1", "x86_64")
    assert files["file"].read() == b"data"
    files["file"].close()


def test_parser_refuses_endless_transport_padding(store):
    from deployments.uploads import UploadRejected

    body = join(file_part(b"data")).replace(
        f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY}{' ' * 2000}\r\n".encode()
    )
    with pytest.raises(UploadRejected, match="a boundary line is longer than 1024 bytes"):
        parse(body, 256)
    assert list(store["temp"].iterdir()) == []


def test_parser_skips_a_file_input_left_empty(store):
    body = join(file_part(b"", name="other", filename=""), file_part(b"data"))
    _, _, files = parse(body)
    assert list(files) == ["file"]
    files["file"].close()


@pytest.mark.parametrize(
    "body",
    [
        join(field_part("version", "1"), file_part(TRICKY), close=b""),  # no closing boundary
        join(field_part("version", "1"), file_part(TRICKY), close=f"\r\n--{BOUNDARY}".encode()),
        join(file_part(TRICKY), field_part("version", "1"), close=b"\r\n"),  # ends in a field
        join(file_part(TRICKY))[:-40],  # cut inside the file
        file_part(b"abc")[:30],  # cut inside the headers
        b"no boundary anywhere",
    ],
)
def test_parser_body_ending_early_is_interrupted_and_keeps_nothing(store, body):
    handler, post, files = parse(body, 256)
    assert handler.interrupted
    assert not files
    assert list(store["temp"].iterdir()) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (join(file_part(b"a"), file_part(b"b")), "Send exactly one file"),
        (join(file_part(b"a", name="other")), "got a file in 'other'"),
        (
            join(file_part(b"abc"), f"--{BOUNDARY}\r\n\r\nvalue".encode()),
            "a part has no Content-Disposition header",
        ),
        (
            join(f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nvalue".encode()),
            "a part has no Content-Disposition header",
        ),
        (
            join(f"--{BOUNDARY}\r\nno colon here\r\n\r\nvalue".encode()),
            "has no 'Name:'",
        ),
        (
            join(f"--{BOUNDARY}\r\nContent-Disposition: attachment\r\n\r\nvalue".encode()),
            "not form-data with a name",
        ),
        (
            join(file_part(b"abc"), field_part("x", "1")).replace(
                f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="x'.encode(),
                f'\r\n--{BOUNDARY}junk\r\nContent-Disposition: form-data; name="x'.encode(),
            ),
            "a boundary line is followed by other text",
        ),
        (
            join(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\nYWJj".encode()
            ),
            "Content-Transfer-Encoding 'base64' is not supported",
        ),
        (
            join(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nX: '.encode()
                + b"y" * 20_000
                + b"\r\n\r\nv"
            ),
            "the headers of a part is longer than",
        ),
    ],
)
def test_parser_malformed_framing_is_400_and_keeps_nothing(store, body, message):
    from deployments.uploads import UploadRejected

    with pytest.raises(UploadRejected) as caught:
        parse(body, 256)
    assert caught.value.status_code == 400
    assert message in str(caught.value.detail)
    assert list(store["temp"].iterdir()) == []


def test_parser_limits_the_form_fields(store, settings):
    from deployments.uploads import UploadRejected

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    with pytest.raises(UploadRejected) as caught:
        parse(join(file_part(b"abc"), field_part("commit", "c" * 200)), 256)
    assert caught.value.status_code == 413
    assert "The form fields are larger than" in str(caught.value.detail)
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    with pytest.raises(UploadRejected, match="Too many form fields"):
        parse(join(*(field_part(f"f{i}", "1") for i in range(4))))
    assert list(store["temp"].iterdir()) == []


def test_parser_over_the_limit_in_small_blocks_is_413(store, settings):
    from portal.api.errors import PayloadTooLarge

    settings.PORTAL_BINARY_MAX_BYTES = 1000
    with pytest.raises(PayloadTooLarge, match="limit of 1000 bytes"):
        parse(join(file_part(b"z" * 1001)), 256)
    assert list(store["temp"].iterdir()) == []


def test_missing_final_boundary_through_the_api_is_400(uploader, orders, store, elf_files):
    content = elf_files["hello"].read_bytes()
    fields = {"version": "1", "arch": "x86_64", "sha256": hashlib.sha256(content).hexdigest()}
    body = multipart(fields, content)
    body = body[: body.rindex(b"--")]  # "...\r\n--BOUNDARY" without the closing "--"
    response = raw_post(uploader, body)
    assert response.status_code == 400
    assert "truncated request body" in response.json()["detail"]
    assert_nothing_kept(store)


def test_malformed_framing_through_the_api_is_400(uploader, orders, store):
    body = join(f"--{BOUNDARY}\r\nContent-Disposition: attachment\r\n\r\nvalue".encode())
    response = raw_post(uploader, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_upload"
    assert "Malformed multipart/form-data body" in response.json()["detail"]
    assert_nothing_kept(store)


# --- reading through gunicorn's body reader --------------------------------------------------


def gunicorn_request(body: bytes, held: bytes, sent: bytes):
    """A WSGIRequest over gunicorn's real body reader on a socketpair.

    `held` plays the body bytes gunicorn read together with the headers; `sent` is what the
    client still sends on the socket.
    """
    import socket
    import threading

    from django.core.handlers.wsgi import WSGIRequest
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    server, client = socket.socketpair()
    sender = threading.Thread(target=client.sendall, args=(sent,), daemon=True)
    sender.start()
    unreader = SocketUnreader(server)
    unreader.unread(held)
    wsgi_input = Body(LengthReader(unreader, len(body)))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": wsgi_input,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    return WSGIRequest(environ), wsgi_input, (server, client, sender)


@pytest.mark.parametrize("held_bytes", [0, 10, 300])
def test_gunicorn_body_is_read_to_its_end_and_no_further(store, held_bytes):
    from deployments.uploads import install_upload_handler

    content = TRICKY * 2000
    body = join(field_part("version", "9"), file_part(content), field_part("arch", "noarch"))
    pipelined = b"GET /next HTTP/1.1\r\n\r\n"
    request, wsgi_input, (server, client, sender) = gunicorn_request(
        body, body[:held_bytes], body[held_bytes:] + pipelined
    )
    try:
        handler = install_upload_handler(request)
        handler.block_size = 4096
        upload = request.FILES["file"]
        assert upload.read() == content
        assert upload.sha256 == hashlib.sha256(content).hexdigest()
        assert (request.POST["version"], request.POST["arch"]) == ("9", "noarch")
        # The body is consumed and nothing after it: the next request is untouched.
        assert wsgi_input.reader.length == 0
        sender.join(5)
        assert wsgi_input.reader.unreader.read(len(pipelined)) == pipelined
        upload.close()
    finally:
        server.close()
        client.close()


def test_gunicorn_socket_closed_early_is_interrupted(store):
    from deployments.uploads import install_upload_handler

    body = join(file_part(TRICKY * 100))
    request, _, (server, client, sender) = gunicorn_request(body, b"", body[:5000])
    try:
        sender.join(5)
        client.close()  # the client went away
        handler = install_upload_handler(request)
        assert "file" not in request.FILES
        assert handler.interrupted
        assert list(store["temp"].iterdir()) == []
    finally:
        server.close()


class Trickle(io.BytesIO):
    """A stream that returns at most `step` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.step if size is None or size < 0 else min(size, self.step))


@pytest.mark.parametrize("step", [1, 7, 100])
def test_parser_handles_short_reads(store, step):
    content = TRICKY * 3
    body = join(field_part("version", "1"), file_part(content), field_part("arch", "noarch"))
    _, post, files = parse(body, 256, stream=Trickle(body, step))
    assert files["file"].read() == content
    assert post["arch"] == "noarch"
    files["file"].close()


def test_write_error_is_raised_and_keeps_nothing(store, monkeypatch):
    from portal.api.errors import InsufficientStorage

    def disk_full(fd: int, data: memoryview) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("deployments.uploads.os.write", disk_full)
    with pytest.raises(InsufficientStorage):  # a 507 (tests/faults/test_disk_full.py)
        parse(join(file_part(TRICKY * 50)), 256)
    assert list(store["temp"].iterdir()) == []

    def broken(fd: int, data: memoryview) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("deployments.uploads.os.write", broken)
    with pytest.raises(OSError, match="Input/output error"):
        parse(join(file_part(TRICKY * 50)), 256)
    assert list(store["temp"].iterdir()) == []


# --- M3: artifact_ref is accepted only for an artifact of these bytes in a catalog registry --


@pytest.fixture
def catalog_registry(running_registry):
    from images.models import Registry

    return Registry.objects.create(
        name="test", url=running_registry.url, tls_verify=False, is_default=True
    )


def test_m3_foreign_registry_artifact_ref_is_refused(uploader, orders, store, elf_files):
    """The review's upload: any digest-pinned reference, e.g. evil.example/x@sha256:aaaa…"""
    ref = "evil.example/x@sha256:" + "a" * 64
    response = post_file(uploader, elf_files["hello"], version="2.2.3", artifact_ref=ref)
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert "artifact_ref refused: evil.example is not a catalog registry" in detail
    assert "push the version as an OCI artifact" in detail
    assert_nothing_kept(store)


def test_m3_catalog_registry_wrong_repository_or_label_is_refused(
    uploader, orders, store, elf_files, catalog_registry
):
    from tests.fixtures.registry import put_image

    url, host = catalog_registry.url, catalog_registry.host
    sha = sha256_of(elf_files["hello"])
    label = "io.baseimage.portal.binary-sha256"
    other_repo = put_image(url, "binaries/payments", "1", labels={label: sha})
    wrong_label = put_image(url, "binaries/orders", "2", labels={label: "0" * 64})
    no_label = put_image(url, "binaries/orders", "3")
    cases = [
        (f"{host}/binaries/payments@{other_repo}", "the repository is binaries/payments"),
        (f"{host}/binaries/orders@{wrong_label}", f"label is '{'0' * 64}', not this binary's"),
        (f"{host}/binaries/orders@{no_label}", "label is None"),
        (f"{host}/binaries/orders@sha256:" + "b" * 64, "does not resolve"),
        (f"{host}/binaries/orders:2@{wrong_label}", "without a tag"),
    ]
    for ref, message in cases:
        response = post_file(uploader, elf_files["hello"], artifact_ref=ref)
        assert response.status_code == 400, (ref, response.json())
        assert message in response.json()["detail"], (ref, response.json())
        assert_nothing_kept(store)
    # The artifact of these very bytes, in binaries/orders of a catalog registry: accepted.
    good = put_image(url, "binaries/orders", "4", labels={label: sha})
    response = post_file(
        uploader, elf_files["hello"], artifact_ref=f"{host}/binaries/orders@{good}"
    )
    assert response.status_code == 201, response.json()
    assert BinaryVersion.objects.get().artifact_ref == f"{host}/binaries/orders@{good}"


def test_m3_registry_down_refuses_an_artifact_ref_it_cannot_check(
    uploader, orders, store, elf_files, catalog_registry, running_registry
):
    ref = f"{catalog_registry.host}/binaries/orders@sha256:" + "c" * 64
    with running_registry.down():
        response = post_file(uploader, elf_files["hello"], artifact_ref=ref)
    assert response.status_code == 400, response.json()
    assert "could not be checked" in response.json()["detail"]
    assert "try again" in response.json()["detail"]
    assert_nothing_kept(store)
