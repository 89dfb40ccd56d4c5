"""Disk full while a binary is stored: a clear 507 JSON error, no row, no partial file.

A small tmpfs (the test runs as root) holds the store, or the upload's temporary directory,
and is nearly full before the upload starts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.models import BinaryVersion, Service
from portal.models import AuditEntry
from tests.deployments.conftest import stored_files
from tests.deployments.test_upload_api import post_file

pytestmark = pytest.mark.django_db

URL = "/api/v1/services/orders/binaries/"


@contextlib.contextmanager
def small_tmpfs(where: Path, size_kib: int, free_kib: int) -> Iterator[Path]:
    """A tmpfs of `size_kib` at `where` with only about `free_kib` left."""
    where.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {mount.stderr}")
    try:
        filler = where / ".filler"
        with filler.open("wb") as handle:
            handle.write(b"\0" * ((size_kib - free_kib) * 1024))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def uploader(token_client, service_team):
    return token_client(service_team, ["binaries:write", "binaries:read"])


@pytest.fixture
def dirs(settings, tmp_path: Path) -> dict:
    root, temp = tmp_path / "store", tmp_path / "upload-tmp"
    root.mkdir()
    temp.mkdir()

    def point(store: Path, upload_tmp: Path) -> None:
        settings.STORAGES = {
            **settings.STORAGES,
            "binaries": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(store)},
            },
        }
        settings.PORTAL_UPLOAD_TEMP_DIR = str(upload_tmp)

    point(root, temp)
    return {"root": root, "temp": temp, "point": point}


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders-server"
    path.write_bytes(os.urandom(768 * 1024))  # 768 KiB: more than the tmpfs has left
    return path


def assert_clear_507(response) -> None:
    assert response.status_code == 507, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "insufficient_storage"
    assert "storage is full" in body["detail"] and "nothing was stored" in body["detail"]


def files_under(path: Path) -> list[Path]:
    return [p for p in stored_files(path) if p.name != ".filler"]


def test_store_full_answers_507_and_keeps_no_row_nor_partial_file(
    uploader, orders, dirs, big_file, tmp_path
):
    uploads_before = AuditEntry.objects.filter(action="binary_version.upload").count()
    with small_tmpfs(tmp_path / "full-store", size_kib=1024, free_kib=256) as store:
        dirs["point"](store, dirs["temp"])
        response = post_file(uploader, big_file)
        assert_clear_507(response)
        assert files_under(store) == []  # the partial copy was removed
    assert BinaryVersion.objects.count() == 0
    assert AuditEntry.objects.filter(action="binary_version.upload").count() == uploads_before
    assert list(dirs["temp"].iterdir()) == []  # the upload's temporary file too


def test_upload_temp_dir_full_answers_507_and_keeps_nothing(
    uploader, orders, dirs, big_file, tmp_path
):
    with small_tmpfs(tmp_path / "full-tmp", size_kib=1024, free_kib=256) as temp:
        dirs["point"](dirs["root"], temp)
        response = post_file(uploader, big_file)
        assert_clear_507(response)
        assert files_under(temp) == []
    assert BinaryVersion.objects.count() == 0
    assert stored_files(dirs["root"]) == []


def test_after_room_is_made_the_same_upload_succeeds(uploader, orders, dirs, big_file, tmp_path):
    with small_tmpfs(tmp_path / "full-store", size_kib=1024, free_kib=256) as store:
        dirs["point"](store, dirs["temp"])
        assert_clear_507(post_file(uploader, big_file))
        (store / ".filler").unlink()  # the operator frees space
        response = post_file(uploader, big_file)
        assert response.status_code == 201, response.content
        assert len(files_under(store)) == 1
    assert BinaryVersion.objects.count() == 1
