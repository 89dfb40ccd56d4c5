"""Reading OSV sources: roots, symlinks, directories, zips (and zip bombs), mirror URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from images.advisories.sources import (
    Limits,
    SourceError,
    SourceUnavailable,
    check_mirror_url,
    fetch_url,
    iter_file,
    iter_path,
    resolve_import_path,
)
from tests.images.osv_import import FIXTURES, generated_records, lying_zip, serve, zip_of

LIMITS = Limits(max_entries=100, max_total_bytes=1_000_000, max_entry_bytes=100_000)


def test_a_path_inside_a_root_resolves(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    assert resolve_import_path(str(tmp_path / "a.json"), [tmp_path]) == (tmp_path / "a.json")
    assert resolve_import_path(str(tmp_path), [str(tmp_path)]) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("{root}/../outside.json", "outside the allowed import roots"),
        ("{root}/sub/../../outside.json", "outside the allowed import roots"),
        ("/etc/passwd", "outside the allowed import roots"),
        ("{root}/escape.json", "outside the allowed import roots"),  # a symlink out of the root
        ("{root}/escape-dir", "outside the allowed import roots"),
        ("{root}/missing.json", "does not exist"),
        ("relative.json", "must be absolute"),
        ("", "empty"),
        ("{root}/a\x00b", "NUL"),
    ],
)
def test_paths_outside_the_roots_are_refused(tmp_path: Path, path: str, reason: str) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (root / "escape.json").symlink_to(outside)
    (root / "escape-dir").symlink_to(tmp_path)
    with pytest.raises(SourceError, match=reason):
        resolve_import_path(path.format(root=root), [root])


def test_no_roots_means_no_paths(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="No advisory import roots"):
        resolve_import_path(str(tmp_path), [])


def test_a_directory_is_read_recursively_and_a_symlink_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "a.json").write_text('{"id": "A-1"}')
    (root / "b.json").write_text('[{"id": "B-1"}, {"id": "B-2"}, 7]')
    (root / "notes.txt").write_text("ignored")
    secret = tmp_path / "secret.json"
    secret.write_text('{"id": "SECRET"}')
    (root / "link.json").symlink_to(secret)
    records = list(iter_path(root, roots=[root], limits=LIMITS))
    by_origin = {r.origin: r for r in records}
    assert sorted(by_origin) == [
        "b.json[0]",
        "b.json[1]",
        "b.json[2]",
        "deep/er/a.json",
        "link.json",
    ]
    assert by_origin["link.json"].error == "the file links outside the allowed import roots"
    assert by_origin["link.json"].data is None
    assert by_origin["b.json[2]"].error.startswith("a record must be a JSON object")
    assert by_origin["b.json[1]"].data == {"id": "B-2"}


def test_a_directory_with_too_many_files_is_refused(tmp_path: Path) -> None:
    for n in range(4):
        (tmp_path / f"{n}.json").write_text("{}")
    with pytest.raises(SourceError, match="holds 4 JSON files; the limit is 3"):
        list(iter_path(tmp_path, roots=[tmp_path], limits=Limits(max_entries=3)))


def test_a_directory_over_the_total_size_is_refused_before_any_record(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"{n}.json").write_text('{"id": "A"}' + " " * 500)
    records = iter_path(tmp_path, roots=[tmp_path], limits=Limits(max_total_bytes=1000))
    with pytest.raises(SourceError, match="hold 1533 bytes; the limit is 1000"):
        next(records)


def test_a_malformed_list_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text('[{"id": "A"},')
    (record,) = iter_file(tmp_path / "list.json", limits=LIMITS)
    assert record.error.startswith("malformed JSON")


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_bytes(b" " * 2000)
    with pytest.raises(SourceError, match="the limit is 1000 bytes"):
        list(iter_file(tmp_path / "big.json", limits=Limits(max_file_bytes=1000)))


def test_a_json_file_over_the_json_limit_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[" + ",".join(['{"id": "A"}'] * 100) + "]")
    (record,) = iter_file(tmp_path / "list.json", limits=Limits(max_json_bytes=100))
    assert record.error.startswith("JSON file is 1201 bytes; the limit is 100")


def test_a_zip_yields_one_record_per_entry(tmp_path: Path) -> None:
    archive = zip_of(generated_records(5), tmp_path / "all.zip")
    records = list(iter_file(archive, limits=LIMITS))
    assert [r.origin for r in records] == [f"DEBIAN-CVE-2099-{n:05d}.json" for n in range(5)]
    assert all(r.data and not r.error for r in records)


def test_a_zip_with_too_many_entries_is_refused_before_reading(tmp_path: Path) -> None:
    archive = zip_of(generated_records(5), tmp_path / "all.zip")
    with pytest.raises(SourceError, match="has 5 entries; the limit is 4"):
        next(iter_file(archive, limits=Limits(max_entries=4)))


def test_a_zip_bomb_by_declared_total_size_is_refused(tmp_path: Path) -> None:
    # 20 entries of 60 kB of zeros: 1.2 MB declared, a few kB on disk
    archive = zip_of({f"{n}.json": b"0" * 60_000 for n in range(20)}, tmp_path / "bomb.zip")
    assert archive.stat().st_size < 20_000
    with pytest.raises(SourceError, match="declares 1200000 bytes uncompressed"):
        next(iter_file(archive, limits=LIMITS))


def test_a_zip_bomb_by_declared_entry_size_is_refused(tmp_path: Path) -> None:
    archive = zip_of({"one.json": b"0" * 200_000}, tmp_path / "bomb.zip")
    with pytest.raises(SourceError, match="entries over 100000 bytes uncompressed"):
        next(iter_file(archive, limits=LIMITS))


def test_a_zip_that_lies_about_its_size_is_stopped_at_the_declared_size(tmp_path: Path) -> None:
    # declares 50 bytes, really inflates to 5 MB: never read beyond what it declared
    archive = lying_zip(tmp_path / "liar.zip", declared=50, real=5_000_000)
    (record,) = iter_file(archive, limits=LIMITS)
    assert record.data is None
    assert "Bad CRC-32" in record.error, record.error


def test_a_zip_that_inflates_past_the_entry_limit_is_stopped(tmp_path: Path) -> None:
    # declares 50 kB (under the limit of 100 kB) but the limit checked while reading is 10 kB
    archive = lying_zip(tmp_path / "liar.zip", declared=50_000, real=5_000_000)
    (record,) = iter_file(
        archive, limits=Limits(max_entries=10, max_total_bytes=10**9, max_entry_bytes=60_000)
    )
    assert record.data is None and record.error


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SourceError, match="not a readable zip"):
        next(iter_file(tmp_path / "broken.zip", limits=LIMITS))


@pytest.mark.parametrize(
    "url",
    [
        "http://mirror.internal.evil.example/osv/all.zip",
        "http://mirror.internal@evil.example/osv/all.zip",
        "http://mirror.internal/osvx/all.zip",
        "http://mirror.internal/osv/../secret",
        "https://mirror.internal/osv/all.zip",  # another scheme is another origin
        "file:///etc/passwd",
        "ftp://mirror.internal/osv/all.zip",
        "",
        "mirror.internal/osv/all.zip",
    ],
)
def test_urls_outside_the_mirrors_are_refused(url: str) -> None:
    with pytest.raises(SourceError):
        check_mirror_url(url, ["http://mirror.internal/osv/"])


def test_urls_under_a_mirror_are_allowed() -> None:
    mirrors = ["http://mirror.internal/osv/", "https://osv.corp/Debian/all.zip"]
    assert check_mirror_url("http://mirror.internal/osv/Go/all.zip", mirrors)
    assert check_mirror_url("https://osv.corp/Debian/all.zip", mirrors)


def test_fetch_streams_a_mirror_file_with_a_cap(tmp_path: Path) -> None:
    body = zip_of(generated_records(3), tmp_path / "src.zip").read_bytes()
    files = {"/osv/all.zip": body, "/osv/nolength.zip": body}
    with serve(files, redirect={"/osv/moved.zip": "http://127.0.0.1:9/x"}) as mirror:
        mirrors = [f"{mirror.base}/osv/"]
        got = fetch_url(
            f"{mirror.base}/osv/all.zip",
            mirrors=mirrors,
            directory=tmp_path / "dl",
            max_bytes=10**6,
            timeout=5,
        )
        assert got.read_bytes() == body
        assert len(list(iter_file(got, limits=LIMITS))) == 3
        # over the cap: by Content-Length, and while streaming when there is none
        for name in ("all.zip", "nolength.zip"):
            with pytest.raises(SourceError, match="limit"):
                fetch_url(
                    f"{mirror.base}/osv/{name}",
                    mirrors=mirrors,
                    directory=tmp_path / "dl",
                    max_bytes=100,
                    timeout=5,
                )
        with pytest.raises(SourceError, match="HTTP 302"):
            fetch_url(
                f"{mirror.base}/osv/moved.zip",
                mirrors=mirrors,
                directory=tmp_path / "dl",
                max_bytes=10**6,
                timeout=5,
            )
        with pytest.raises(SourceUnavailable, match="HTTP 503"):
            fetch_url(
                f"{mirror.base}/osv/busy.zip",
                mirrors=mirrors,
                directory=tmp_path / "dl",
                max_bytes=10**6,
                timeout=5,
            )
        with pytest.raises(SourceError, match="HTTP 404") as caught:
            fetch_url(
                f"{mirror.base}/osv/none.zip",
                mirrors=mirrors,
                directory=tmp_path / "dl",
                max_bytes=10**6,
                timeout=5,
            )
        assert not isinstance(caught.value, SourceUnavailable)  # a 404 is not retried
        with pytest.raises(SourceError, match="not under an allowed advisory mirror"):
            fetch_url(
                f"{mirror.base}/other/all.zip",
                mirrors=mirrors,
                directory=tmp_path / "dl",
                max_bytes=10**6,
                timeout=5,
            )
    assert "/other/all.zip" not in mirror.hits  # refused before any request
    assert os.listdir(tmp_path / "dl") == [got.name]  # failed downloads leave nothing behind


def test_an_unreachable_mirror_is_unavailable(tmp_path: Path) -> None:
    from bench.support import free_port

    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceUnavailable, match="failed"):
        fetch_url(f"{base}/all.zip", mirrors=[base], directory=tmp_path, max_bytes=100, timeout=2)


def test_fixture_tree_is_inside_its_root() -> None:
    assert resolve_import_path(str(FIXTURES / "good"), [FIXTURES]).is_dir()
