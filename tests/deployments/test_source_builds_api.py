"""Source builds through the API: every bad input refused with nothing kept, the cache key,
and the permission matrix. (The compile itself, with real buildah: test_source_builds.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from deployments.models import BinaryVersion, Service, SourceBuild
from deployments.sourcearchive import ArchiveLimits, SourceArchiveError, check_archive, unpack
from portal.choices import Role
from portal.models import AuditEntry, Job
from tests.deployments.conftest import stored_files
from tests.deployments.factories import BinaryVersionFactory
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/services/orders/builds/"
HELLO = b'#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def targz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out.getvalue()


def file_member(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def link_member(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def good_archive() -> bytes:
    return targz([(file_member("hello.c"), HELLO)])


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def build_image(db):
    return ImageVersionFactory(
        base_image=BaseImageFactory(name="build/gcc", kind="build"), tag="12", state="approved"
    )


@pytest.fixture
def dev(token_client, service_team):
    return token_client(service_team, ["binaries:read", "binaries:write"])


@pytest.fixture
def store(binary_store_dir):
    return binary_store_dir


def post(client, image, archive: bytes | None = None, **fields):
    data = {
        "build_image_version": str(image.pk),
        "command": json.dumps(["gcc", "-o", "/out/hello", "hello.c"]),
        "output_path": "hello",
        "version": "1.0.0",
        "arch": "x86_64",
        **fields,
    }
    if archive is not None:
        data["archive"] = io.BytesIO(archive)
        data["archive"].name = "src.tar.gz"
    return client.post(URL, data, format="multipart")


def assert_nothing_kept(store) -> None:
    assert SourceBuild.objects.count() == 0
    assert Job.objects.filter(kind="deployments.source_build").count() == 0
    assert stored_files(store["root"]) == []


def test_start_stores_the_archive_by_hash_and_queues_the_job(dev, orders, build_image, store):
    archive = good_archive()
    response = post(dev, build_image, archive)
    assert response.status_code == 202, response.json()
    body = response.json()
    build = SourceBuild.objects.get()
    assert body["cached"] is False
    assert body["build"]["id"] == build.pk
    assert body["job"]["kind"] == "deployments.source_build"
    assert response["Location"] == f"/api/v1/services/orders/builds/{build.pk}/"
    job = Job.objects.get(pk=body["job"]["id"])
    assert (job.queue, job.params) == ("builds", {"source_build_id": build.pk})
    assert build.command == ["gcc", "-o", "/out/hello", "hello.c"]
    assert (build.state, build.arch, build.version, build.source_size) == (
        "queued",
        "x86_64",
        "1.0.0",
        len(archive),
    )
    sha = hashlib.sha256(archive).hexdigest()
    assert build.source_sha256 == sha
    assert build.source_file == f"sources/sha256/{sha[:2]}/{sha}"
    assert [p.relative_to(store["root"]).as_posix() for p in stored_files(store["root"])] == [
        build.source_file
    ]
    assert (store["root"] / build.source_file).read_bytes() == archive
    assert AuditEntry.objects.filter(action="source_build.start").count() == 1

    # the same inputs: the same build, no second job
    again = post(dev, build_image, archive)
    assert again.status_code == 200, again.json()
    assert again.json()["cached"] is True
    assert again.json()["build"]["id"] == build.pk
    assert again.json()["job"]["id"] == job.pk
    assert SourceBuild.objects.count() == 1
    assert Job.objects.filter(kind="deployments.source_build").count() == 1

    # one input differs (the command): another build, but the version is being built → 409
    other = post(dev, build_image, archive, command="gcc -O2 -o /out/hello hello.c")
    assert other.status_code == 409, other.json()
    assert other.json()["code"] == "duplicate"

    # list and detail
    listed = dev.get(URL)
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["results"]] == [build.pk]
    detail = dev.get(f"{URL}{build.pk}/")
    assert detail.status_code == 200
    assert detail.json()["provenance"] == {}
    assert dev.get(f"{URL}99999/").status_code == 404
    assert dev.get(f"{URL}abc/").status_code == 404


def test_a_string_command_runs_in_a_shell(dev, orders, build_image, store):
    response = post(dev, build_image, good_archive(), command="gcc -o /out/hello hello.c")
    assert response.status_code == 202, response.json()
    assert SourceBuild.objects.get().command == ["/bin/sh", "-c", "gcc -o /out/hello hello.c"]


def test_a_failed_build_of_the_same_inputs_starts_again(dev, orders, build_image, store):
    archive = good_archive()  # once: gzip headers carry the time
    first = post(dev, build_image, archive)
    build = SourceBuild.objects.get()
    Job.objects.filter(pk=first.json()["job"]["id"]).update(state="failed")
    SourceBuild.objects.filter(pk=build.pk).update(state="failed", error="boom")
    again = post(dev, build_image, archive)
    assert again.status_code == 200
    assert again.json()["cached"] is True
    build.refresh_from_db()
    assert (build.state, build.error) == ("queued", "")
    assert again.json()["job"]["id"] != first.json()["job"]["id"]
    assert SourceBuild.objects.count() == 1


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ([(file_member("../evil.c"), b"x")], "contains '..'"),
        ([(file_member("src/../../evil.c"), b"x")], "contains '..'"),
        ([(file_member("/etc/cron.d/evil"), b"x")], "absolute path"),
        ([(link_member("escape", "../../etc/passwd"), None)], "outside the archive"),
        ([(link_member("escape", "/etc/passwd"), None)], "absolute path"),
        ([(link_member("hard", "/etc/passwd", hard=True), None)], "hard link"),
        ([(link_member("hard", "../x", hard=True), None)], "hard link"),
        ([(link_member("hard", "notthere", hard=True), None)], "not a file earlier"),
    ],
    ids=[
        "traversal",
        "nested-traversal",
        "absolute",
        "symlink-escape",
        "symlink-absolute",
        "hardlink-absolute",
        "hardlink-escape",
        "hardlink-dangling",
    ],
)
def test_archives_reaching_outside_are_refused(dev, orders, build_image, store, members, words):
    response = post(dev, build_image, targz([(file_member("hello.c"), HELLO), *members]))
    assert response.status_code == 400, response.json()
    assert words in response.json()["detail"]
    assert "Nothing was kept" in response.json()["detail"]
    assert_nothing_kept(store)


def test_device_files_and_non_gzip_are_refused(dev, orders, build_image, store):
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    device.devmajor, device.devminor = 1, 3
    response = post(dev, build_image, targz([(device, None)]))
    assert response.status_code == 400
    assert "device file" in response.json()["detail"]
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        info = file_member("hello.c")
        info.size = len(HELLO)
        tar.addfile(info, io.BytesIO(HELLO))
    response = post(dev, build_image, plain.getvalue())
    assert response.status_code == 400
    assert "not gzip-compressed" in response.json()["detail"]
    response = post(dev, build_image, b"\x1f\x8bnot really gzip")
    assert response.status_code == 400
    assert "not a readable tar.gz" in response.json()["detail"]
    assert_nothing_kept(store)


def test_too_many_members_and_too_large_unpacked(dev, orders, build_image, store, settings):
    settings.PORTAL_SOURCE_MAX_ENTRIES = 3
    many = targz([(file_member(f"f{i}.c"), b"x") for i in range(4)])
    response = post(dev, build_image, many)
    assert response.status_code == 400
    assert "more than 3 members" in response.json()["detail"]
    settings.PORTAL_SOURCE_MAX_ENTRIES = 100
    settings.PORTAL_SOURCE_MAX_UNPACKED_BYTES = 1000
    bomb = targz([(file_member("zeros"), b"\0" * 100_000)])  # compresses to ~100 bytes
    assert len(bomb) < 1000
    response = post(dev, build_image, bomb)
    assert response.status_code == 400
    assert "unpacks to more than 1000 bytes" in response.json()["detail"]
    assert_nothing_kept(store)


def test_an_oversized_archive_is_413(dev, orders, build_image, store, settings):
    settings.PORTAL_SOURCE_MAX_BYTES = 2000
    big = targz([(file_member("noise"), os.urandom(5000))])
    assert len(big) > 2000
    response = post(dev, build_image, big)
    assert response.status_code == 413, response.json()
    assert response.json()["code"] == "too_large"
    assert "PORTAL_SOURCE_MAX_BYTES" in response.json()["detail"]
    assert_nothing_kept(store)
    assert list(store["temp"].iterdir()) == []


def test_build_image_must_be_an_approved_build_image(dev, orders, build_image, store):
    runtime = ImageVersionFactory(base_image=BaseImageFactory(name="runtime/debian"))
    candidate = ImageVersionFactory(base_image=build_image.base_image, tag="13", state="candidate")
    for image, words in (
        (runtime, "it is a runtime image"),
        (candidate, "it is candidate"),
    ):
        response = post(dev, image, good_archive())
        assert response.status_code == 400, response.json()
        assert "not an approved build image" in response.json()["detail"]
        assert words in response.json()["detail"]
    response = post(dev, build_image, good_archive(), build_image_version="999999")
    assert response.status_code == 400
    assert "not an approved build image" in response.json()["detail"]
    assert_nothing_kept(store)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"command": "[]"}, "command", "non-empty list"),
        ({"command": ""}, "command", "Give the build command"),
        ({"command": "[1, 2]"}, "command", "list of strings"),
        ({"command": "[not json"}, "command", "not valid JSON"),
        ({"output_path": "/out/hello"}, "output_path", "is absolute"),
        ({"output_path": "../hello"}, "output_path", "no '..'"),
        ({"output_path": "a/../../hello"}, "output_path", "no '..'"),
        ({"output_path": ""}, "output_path", "Give the output"),
        ({"version": "1.0 beta"}, "version", "is not a version"),
        ({"version": ""}, "version", "is not a version"),
        ({"arch": "pdp11"}, "arch", "Unknown architecture"),
    ],
)
def test_bad_fields_are_400(dev, orders, build_image, store, fields, field, words):
    response = post(dev, build_image, good_archive(), **fields)
    assert response.status_code == 400, response.json()
    assert words in str(response.json()["errors"][field])
    assert_nothing_kept(store)


def test_missing_archive_and_existing_version(dev, orders, build_image, store):
    response = post(dev, build_image, None)
    assert response.status_code == 400
    assert "archive" in response.json()["errors"]
    BinaryVersionFactory(service=orders, version="1.0.0", arch="x86_64")
    response = post(dev, build_image, good_archive())
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert_nothing_kept(store)


def test_unknown_and_malformed_service(dev, build_image, store):
    response = dev.post("/api/v1/services/nope/builds/", {}, format="multipart")
    assert response.status_code == 404
    assert dev.get("/api/v1/services/nope/builds/").status_code == 404
    assert dev.get("/api/v1/services/No..pe/builds/").status_code == 400
    assert dev.post("/api/v1/services/No..pe/builds/", {}, format="multipart").status_code == 400


# --- the archive checks on their own (the job unpacks with them) --------------------------


def test_unpack_extracts_and_empties_the_target_on_a_refused_member(tmp_path: Path):
    limits = ArchiveLimits(max_entries=100, max_bytes=10_000)
    good = tmp_path / "good.tar.gz"
    directory = tarfile.TarInfo("src")
    directory.type = tarfile.DIRTYPE
    directory.mode = 0o755
    good.write_bytes(
        targz(
            [
                (directory, None),
                (file_member("src/hello.c"), HELLO),
                (link_member("src/link.c", "hello.c"), None),
                (link_member("hard.c", "src/hello.c", hard=True), None),
            ]
        )
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    summary = unpack(good, dest, limits)
    assert summary.entries == 4
    assert (dest / "src/hello.c").read_bytes() == HELLO
    assert (dest / "src/link.c").is_symlink()
    assert (dest / "hard.c").read_bytes() == HELLO
    assert check_archive(good, limits).entries == 4

    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(
        targz([(file_member("a.c"), b"a"), (link_member("b", "../../etc/passwd"), None)])
    )
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    with pytest.raises(SourceArchiveError, match="outside the archive"):
        unpack(bad, dest2, limits)
    assert list(dest2.iterdir()) == []


# --- the permission matrix -----------------------------------------------------------------

CALLERS = ("anon", "viewer", "developer", "maintainer", "admin", "token_scoped", "token_other")


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user, orders, build_image, store):
    build = SourceBuild.objects.create(
        service=orders,
        build_version=build_image,
        version="0.1.0",
        arch="x86_64",
        source_name="src.tar.gz",
        source_sha256="0" * 64,
        source_size=1,
        source_file="sources/sha256/00/" + "0" * 64,
        command=["true"],
        output_path="app",
        cache_key="f" * 64,
    )
    return {
        "users": {
            "viewer": make_user("v", service_team, Role.VIEWER),
            "developer": make_user("d", service_team, Role.DEVELOPER),
            "maintainer": make_user("m", service_team, Role.MAINTAINER),
            "admin": admin_user,
        },
        "build": build,
    }


#         method  path              scope             anon viewer dev maint admin tok other
MATRIX = [
    ("GET", URL, "binaries:read", (401, 200, 200, 200, 200, 200, 403)),
    ("GET", URL + "{build}/", "binaries:read", (401, 200, 200, 200, 200, 200, 403)),
    # an empty form: allowed callers get as far as the field checks (400)
    ("POST", URL, "binaries:write", (401, 403, 400, 400, 403, 400, 403)),
    ("POST", URL, "binaries:read", (401, 403, 400, 400, 403, 403, 403)),
    ("DELETE", URL + "{build}/", "binaries:read", (401, 405, 405, 405, 405, 405, 403)),
    ("PUT", URL + "{build}/", "binaries:write", (401, 405, 405, 405, 405, 403, 403)),
]


@pytest.mark.parametrize("entry", MATRIX, ids=lambda e: f"{e[0]} {e[1]} {e[2]}")
def test_permission_matrix(entry, world, make_token, service_team):
    from rest_framework.test import APIClient

    method, path, scope, expected = entry
    path = path.format(build=world["build"].pk)
    failures = []
    for caller, expect in zip(CALLERS, expected, strict=True):
        client = APIClient()
        if caller in world["users"]:
            client.force_login(world["users"][caller])
        elif caller.startswith("token"):
            scopes = [scope] if caller == "token_scoped" else ["dockerfile:check"]
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(service_team, scopes)}")
        if method == "POST":
            response = client.post(path, {}, format="multipart")
        else:
            response = getattr(client, method.lower())(path)
        if response.status_code != expect:
            failures.append(f"{caller}: {response.status_code} != {expect}")
    assert not failures, failures
    assert BinaryVersion.objects.count() == 0


def test_an_archive_made_with_tar_c_dot_unpacks(tmp_path: Path):
    """`tar czf src.tar.gz -C dir .` names members `./…`: those are inside the archive."""
    top = tarfile.TarInfo(".")
    top.type = tarfile.DIRTYPE
    top.mode = 0o755
    archive = tmp_path / "dot.tar.gz"
    archive.write_bytes(
        targz(
            [
                (top, None),
                (file_member("./hello.c"), HELLO),
                (link_member("./l", "hello.c"), None),
            ]
        )
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    assert unpack(archive, dest, ArchiveLimits(max_entries=10, max_bytes=10_000)).entries == 3
    assert (dest / "hello.c").read_bytes() == HELLO
    assert os.readlink(dest / "l") == "hello.c"
