"""The upload's ELF reader, issue 10 facts: machine, class, RUNPATH and every (library,
version) pair it needs — checked against binutils (`readelf -V`, `objdump -p`, `readelf -d/-h`)
on real binaries compiled here and taken from Debian 11/13; the upload stores them
(facts_version 2, built_in) and the backfill fills versions uploaded before."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from deployments.elf import FACTS_VERSION, analyze_binary
from deployments.models import BinaryVersion, Service
from portal.actors import Actor
from portal.jobs import job_create, job_execute
from tests.fixtures.compat import (
    compat_binaries_fixture,  # noqa: F401
    debian_binaries_fixture,  # noqa: F401
    run,
)
from tests.images.factories import ImageVersionFactory

ALL = [
    "hello",
    "hello-static",
    "hello-relr",
    "hello-musl",
    "hello-aarch64",
    "private",
    "cxx",
    "usemylib",
    "usefoo",
    "usefoo-norpath",
    "libmylib.so.1",
]


def readelf_version_needs(path: Path) -> list[tuple[str, str]]:
    """(File, Name) pairs of `readelf -V`'s version needs section, in file order."""
    text = run(["readelf", "-V", "-W", str(path)])
    if "Version needs section" not in text:
        return []
    section = text.split("Version needs section", 1)[1]
    section = section.split("Version definition section", 1)[0]
    pairs: list[tuple[str, str]] = []
    library = ""
    for line in section.splitlines():
        file_match = re.search(r"File: (\S+)", line)
        if file_match:
            library = file_match.group(1)
            continue
        name_match = re.search(r"Name: (\S+)", line)
        if name_match:
            pairs.append((library, name_match.group(1)))
    return pairs


def objdump_version_needs(path: Path) -> set[tuple[str, str]]:
    """`objdump -p`'s Version References: {(library, version)}."""
    text = run(["objdump", "-p", str(path)])
    pairs: set[tuple[str, str]] = set()
    library = ""
    in_refs = False
    for line in text.splitlines():
        if line.startswith("Version References:"):
            in_refs = True
            continue
        if in_refs:
            required = re.match(r"\s+required from (\S+):", line)
            if required:
                library = required.group(1)
                continue
            entry = re.match(r"\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)", line)
            if entry:
                pairs.add((library, entry.group(1)))
                continue
            if line.strip() and not line.startswith(" "):
                in_refs = False
    return pairs


def readelf_runpath(path: Path) -> tuple[str, ...]:
    text = run(["readelf", "-d", "-W", str(path)])
    runpath = re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", text)
    rpath = re.findall(r"\(RPATH\)\s+Library rpath: \[(.*)\]", text)
    entries = runpath or rpath
    return tuple(p for value in entries for p in value.split(":") if p)


def readelf_class(path: Path) -> str:
    return re.search(r"Class:\s+(\S+)", run(["readelf", "-h", str(path)])).group(1)


@pytest.mark.parametrize("name", ALL)
def test_version_needs_runpath_and_class_match_binutils(compat_binaries, name):
    path = compat_binaries[name]
    facts = analyze_binary(str(path))
    assert list(facts.version_needs) == readelf_version_needs(path)
    assert set(facts.version_needs) == objdump_version_needs(path)
    assert facts.runpath == readelf_runpath(path)
    assert facts.elf_class == readelf_class(path)


@pytest.mark.parametrize("name", ["ls-11", "ls-13"])
def test_debian_binaries_match_binutils(debian_binaries, name):
    path = debian_binaries[name]
    facts = analyze_binary(str(path))
    assert list(facts.version_needs) == readelf_version_needs(path)
    assert set(facts.version_needs) == objdump_version_needs(path)
    assert facts.elf_class == "ELF64" and facts.machine == "x86_64"


def test_the_facts_that_matter_for_verdicts(compat_binaries, debian_binaries):
    facts = {name: analyze_binary(str(path)) for name, path in compat_binaries.items()}
    assert ("libc.so.6", "GLIBC_ABI_DT_RELR") in facts["hello-relr"].version_needs
    assert ("libc.so.6", "GLIBC_ABI_DT_RELR") not in facts["hello"].version_needs
    assert ("libc.so.6", "GLIBC_2.34") in facts["hello"].version_needs
    assert facts["hello-static"].version_needs == () and facts["hello-static"].linkage == "static"
    assert facts["hello-musl"].libc == "musl"
    assert facts["hello-musl"].interpreter == "/lib/ld-musl-x86_64.so.1"
    assert facts["hello-aarch64"].machine == "aarch64"
    assert facts["hello-aarch64"].interpreter == "/lib/ld-linux-aarch64.so.1"
    assert ("libmylib.so.1", "MYLIB_2.0") in facts["usemylib"].version_needs
    assert facts["usefoo"].runpath == ("$ORIGIN",) and facts["usefoo-norpath"].runpath == ()
    assert ("ld-linux-x86-64.so.2", "GLIBC_PRIVATE") in facts["private"].version_needs
    assert any(
        lib == "libstdc++.so.6" and version.startswith("GLIBCXX_3.4.")
        for lib, version in facts["cxx"].version_needs
    )
    ls13 = analyze_binary(str(debian_binaries["ls-13"]))
    assert ("libc.so.6", "GLIBC_2.38") in ls13.version_needs


# --- upload stores them; built_in; backfill ----------------------------------------------

URL = "/api/v1/services/orders/binaries/"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def uploader(token_client, service_team):
    return token_client(service_team, ["binaries:write", "binaries:read"])


def post_file(client, path: Path, **fields: str):
    data = {"version": "1.0.0", "arch": "x86_64", "sha256": sha256_of(path), **fields}
    with path.open("rb") as fh:
        return client.post(URL, {"file": fh, **data}, format="multipart")


@pytest.mark.django_db
def test_upload_records_version_needs_and_built_in(
    uploader, orders, binary_store_dir, compat_binaries
):
    build = ImageVersionFactory(base_image__name="build/gcc", base_image__kind="build", tag="12")
    response = post_file(uploader, compat_binaries["usefoo"], built_in=str(build.pk))
    assert response.status_code == 201, response.json()
    body = response.json()
    row = BinaryVersion.objects.get()
    assert row.facts_version == FACTS_VERSION == 2
    assert row.built_in_id == build.pk and body["built_in"] == build.pk
    assert row.machine == "x86_64" and row.elf_class == "ELF64"
    assert row.runpath == ["$ORIGIN"]
    expected = readelf_version_needs(compat_binaries["usefoo"])
    assert row.version_needs == [list(pair) for pair in expected]
    assert body["version_needs"] == row.version_needs


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value,message",
    [
        ("abc", "not 'abc'"),
        ("99999999", "No published build image version"),
        ("-1", "not '-1'"),
        ("1" * 40, "image version id"),
        ("runtime", "not 'runtime'"),
    ],
)
def test_upload_refuses_a_bad_built_in_and_keeps_nothing(
    uploader, orders, binary_store_dir, compat_binaries, value, message
):
    response = post_file(uploader, compat_binaries["hello"], built_in=value)
    assert response.status_code == 400
    assert message in str(response.json())
    assert BinaryVersion.objects.count() == 0
    assert not any(p.is_file() for p in binary_store_dir["root"].rglob("*"))


@pytest.mark.django_db
def test_upload_refuses_a_runtime_or_candidate_version_as_built_in(
    uploader, orders, binary_store_dir, compat_binaries
):
    runtime = ImageVersionFactory(base_image__kind="runtime")
    candidate = ImageVersionFactory(base_image__kind="build", state="candidate")
    for version in (runtime, candidate):
        response = post_file(uploader, compat_binaries["hello"], built_in=str(version.pk))
        assert response.status_code == 400, response.json()
        assert "No published build image version" in str(response.json())
    assert BinaryVersion.objects.count() == 0


@pytest.mark.django_db
def test_ui_upload_takes_built_in(client, developer, orders, binary_store_dir, compat_binaries):
    build = ImageVersionFactory(base_image__name="build/gcc", base_image__kind="build")
    client.force_login(developer)
    path = compat_binaries["hello"]
    with path.open("rb") as fh:
        response = client.post(
            "/services/orders/upload/",
            {
                "file": fh,
                "version": "2.0.0",
                "arch": "x86_64",
                "sha256": sha256_of(path),
                "built_in": str(build.pk),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert BinaryVersion.objects.get().built_in_id == build.pk


def _age(row: BinaryVersion) -> None:
    """Make the row look as the reader before issue 10 left it."""
    BinaryVersion.objects.filter(pk=row.pk).update(
        facts_version=0, version_needs=[], runpath=[], machine="", elf_class=""
    )


@pytest.mark.django_db
def test_backfill_job_reads_the_stored_files(uploader, orders, binary_store_dir, compat_binaries):
    for version, name in (("1", "hello-relr"), ("2", "usefoo"), ("3", "private")):
        assert post_file(uploader, compat_binaries[name], version=version).status_code == 201
    rows = list(BinaryVersion.objects.order_by("version"))
    before = {r.pk: (r.version_needs, r.runpath, r.machine, r.elf_class) for r in rows}
    for row in rows:
        _age(row)
    job, _ = job_create(
        kind="deployments.backfill_binary_facts",
        actor=Actor.system_actor("test"),
        params={"batch_size": 2},
    )
    assert job_execute(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.result == {"updated": 3, "skipped": 0}
    for row in BinaryVersion.objects.all():
        assert row.facts_version == 2
        assert (row.version_needs, row.runpath, row.machine, row.elf_class) == before[row.pk]
    # A second run finds nothing to do.
    again, _ = job_create(kind="deployments.backfill_binary_facts", actor=Actor.system_actor("t"))
    assert job_execute(again.pk) == "succeeded"
    again.refresh_from_db()
    assert again.result == {"updated": 0, "skipped": 0}


@pytest.mark.django_db
def test_backfill_command_skips_missing_files(
    uploader, orders, binary_store_dir, compat_binaries, capsys
):
    assert post_file(uploader, compat_binaries["hello"], version="1").status_code == 201
    assert post_file(uploader, compat_binaries["cxx"], version="2").status_code == 201
    gone, kept = BinaryVersion.objects.order_by("version")
    _age(gone)
    _age(kept)
    (binary_store_dir["root"] / gone.file).unlink()
    call_command("backfill_binary_facts", "--batch-size", "1")
    out = capsys.readouterr().out
    assert "1 updated, 1 skipped" in out
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.facts_version == 0 and kept.facts_version == 2
    assert any(lib == "libstdc++.so.6" for lib, _v in kept.version_needs)


@pytest.mark.django_db
def test_backfill_command_can_queue_the_job_once(capsys):
    call_command("backfill_binary_facts", "--job")
    call_command("backfill_binary_facts", "--job")
    out = capsys.readouterr().out
    assert "queued" in out and "already queued" in out
