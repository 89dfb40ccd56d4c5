"""Verdicts of real binaries on the real ABI facts of Debian 11 (glibc 2.31), 12 (2.36) and
13 (2.41), read by the scanner's ABI reader from the bootstrapped images. Expected missing
versions come from binutils: `readelf -V` of the binary against `readelf -V` of the image's
libc.so.6 (set difference), never from the code under test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deployments.elf import analyze_binary
from images.compat.pairs import pair_verdict
from images.compat.verdict import BinaryFacts, ImageFacts, binary_verdict
from images.scanning.abi import AbiFacts
from tests.fixtures.compat import (
    TRIPLET_LIB,
    compat_binaries_fixture,  # noqa: F401
    debian_abi_fixture,  # noqa: F401
    debian_binaries_fixture,  # noqa: F401
    debian_rootfs,
    layer_with,
    read_abi,
    run,
    to_image_facts,
)


def facts_of(path: Path, **extra: object) -> BinaryFacts:
    elf = analyze_binary(str(path))
    return BinaryFacts(
        file_type=elf.file_type,
        arch=elf.machine,
        machine=elf.machine,
        elf_class=elf.elf_class,
        linkage=elf.linkage,
        interpreter=elf.interpreter,
        libc=elf.libc,
        needed=elf.needed,
        runpath=elf.runpath,
        version_needs=elf.version_needs,
        **extra,
    )


@pytest.fixture(scope="module")
def images(debian_abi: dict[str, AbiFacts]) -> dict[str, ImageFacts]:
    return {
        release: to_image_facts(abi, name=f"runtime/debian:{release}")
        for release, abi in debian_abi.items()
    }


def readelf_needs(path: Path, library: str) -> set[str]:
    text = run(["readelf", "-V", "-W", str(path)]).split("Version needs section", 1)[-1]
    names: set[str] = set()
    current = ""
    for line in text.splitlines():
        if m := re.search(r"File: (\S+)", line):
            current = m.group(1)
        elif (m := re.search(r"Name: (\S+)", line)) and current == library:
            names.add(m.group(1))
    return names


def readelf_defines(path: Path) -> set[str]:
    text = run(["readelf", "-V", "-W", str(path)]).split("Version definition section", 1)[-1]
    text = text.split("Version needs section", 1)[0]
    return set(re.findall(r"Name: (\S+)", text)) | set(re.findall(r"Parent \d+: (\S+)", text))


def libc_finding(result):
    return next(f for f in result.findings if f.key == "version-missing:libc.so.6")


def named_versions(title: str) -> set[str]:
    return set(title.split(" does not define ", 1)[1].split(", "))


def test_the_reader_sees_three_glibc_releases(images):
    assert {r: (i.libc_kind, i.libc_version) for r, i in images.items()} == {
        "11": ("glibc", "2.31"),
        "12": ("glibc", "2.36"),
        "13": ("glibc", "2.41"),
    }
    for facts in images.values():
        assert "/lib64/ld-linux-x86-64.so.2" in facts.loader_paths


def test_a_debian_13_binary_is_blocked_on_12_and_11_with_the_exact_versions(
    images, debian_binaries
):
    ls13 = debian_binaries["ls-13"]
    binary = facts_of(ls13)
    needs = readelf_needs(ls13, "libc.so.6")
    assert binary_verdict(binary, images["13"]).verdict == "compatible"
    for release in ("12", "11"):
        defined = readelf_defines(debian_binaries[f"libc-{release}"])
        expected = needs - defined
        assert expected, f"the Debian 13 ls must need something Debian {release} lacks"
        result = binary_verdict(binary, images[release])
        assert result.verdict == "incompatible"
        finding = libc_finding(result)
        assert finding.blocking
        assert named_versions(finding.title) == expected
        assert f"glibc ≤ {images[release].libc_version}" in finding.remediation
    # Spelled out, so a reader sees what the oracle computed.
    on12 = named_versions(libc_finding(binary_verdict(binary, images["12"])).title)
    on11 = named_versions(libc_finding(binary_verdict(binary, images["11"])).title)
    assert on12 == {"GLIBC_2.38"}
    assert on11 == {"GLIBC_2.33", "GLIBC_2.34", "GLIBC_2.38"}


def test_a_debian_11_binary_passes_on_12_and_13(images, debian_binaries):
    binary = facts_of(debian_binaries["ls-11"])
    for release in ("11", "12", "13"):
        result = binary_verdict(binary, images[release])
        assert (result.verdict, result.findings) == ("compatible", ())


def test_binaries_compiled_here_on_each_release(images, compat_binaries, debian_binaries):
    hello = facts_of(compat_binaries["hello"])
    assert binary_verdict(hello, images["12"]).verdict == "compatible"
    assert binary_verdict(hello, images["13"]).verdict == "compatible"
    on11 = binary_verdict(hello, images["11"])
    assert on11.verdict == "incompatible"
    expected = readelf_needs(compat_binaries["hello"], "libc.so.6") - readelf_defines(
        debian_binaries["libc-11"]
    )
    assert named_versions(libc_finding(on11).title) == expected == {"GLIBC_2.34"}

    relr = facts_of(compat_binaries["hello-relr"])
    assert binary_verdict(relr, images["12"]).verdict == "compatible"
    assert named_versions(libc_finding(binary_verdict(relr, images["11"])).title) == {
        "GLIBC_2.34",
        "GLIBC_ABI_DT_RELR",
    }

    static = binary_verdict(facts_of(compat_binaries["hello-static"]), images["11"])
    assert static.verdict == "compatible"
    assert [f.key for f in static.findings] == ["static-binary"]

    musl = binary_verdict(facts_of(compat_binaries["hello-musl"]), images["12"])
    assert musl.verdict == "incompatible"
    assert [f.key for f in musl.blocking] == [
        "libc-mismatch",
        "interpreter-missing",
        "library-missing:libc.so",
    ]

    arm = binary_verdict(facts_of(compat_binaries["hello-aarch64"]), images["12"])
    assert arm.verdict == "incompatible"
    assert [f.key for f in arm.blocking][:2] == ["arch-mismatch", "interpreter-missing"]

    private = binary_verdict(facts_of(compat_binaries["private"]), images["12"])
    assert private.verdict == "compatible"
    assert [f.key for f in private.findings] == ["glibc-private"]

    cxx = facts_of(compat_binaries["cxx"])
    assert binary_verdict(cxx, images["12"]).verdict == "compatible"
    assert binary_verdict(cxx, images["13"]).verdict == "compatible"


def test_origin_bundled_library_passes_and_without_runpath_blocks(images, compat_binaries):
    bundled = binary_verdict(facts_of(compat_binaries["usefoo"]), images["12"])
    assert bundled.verdict == "compatible"
    assert [f.key for f in bundled.findings] == ["bundled-libraries"]
    plain = binary_verdict(facts_of(compat_binaries["usefoo-norpath"]), images["12"])
    assert plain.verdict == "incompatible"
    assert [f.key for f in plain.findings] == ["library-missing:libfoo.so"]


@pytest.fixture(scope="module")
def images_with_mylib(compat_binaries, tmp_path_factory) -> dict[str, ImageFacts]:
    """Debian 12 plus a layer with libmylib.so.1: the old one (MYLIB_1.0) or the new one."""
    result = {}
    for which, lib in (("old", "libmylib-old.so.1"), ("new", "libmylib.so.1")):
        tmp = tmp_path_factory.mktemp(f"mylib-{which}")
        layer = layer_with({f"{TRIPLET_LIB}/libmylib.so.1": compat_binaries[lib]}, tmp / "l.tar")
        abi = read_abi([debian_rootfs("12", tmp), layer], tmp)
        result[which] = to_image_facts(abi, name=f"runtime/debian:12-mylib-{which}")
    return result


def test_a_library_version_the_target_lacks_blocks(images, images_with_mylib, compat_binaries):
    binary = facts_of(compat_binaries["usemylib"])
    absent = binary_verdict(binary, images["12"])
    assert [(f.key, f.blocking) for f in absent.findings] == [
        ("library-missing:libmylib.so.1", True)
    ]
    old = binary_verdict(binary, images_with_mylib["old"])
    assert old.verdict == "incompatible"
    (finding,) = old.findings
    assert finding.key == "version-missing:libmylib.so.1"
    assert finding.title == (
        "libmylib.so.1 on runtime/debian:12-mylib-old does not define MYLIB_2.0"
    )
    assert binary_verdict(binary, images_with_mylib["new"]).verdict == "compatible"


def test_pair_rule_on_real_images(images):
    bookworm_as_build = images["12"]
    assert pair_verdict(bookworm_as_build, images["13"]).verdict == "compatible"
    assert pair_verdict(bookworm_as_build, images["12"]).verdict == "compatible"
    down = pair_verdict(bookworm_as_build, images["11"])
    assert down.verdict == "check_per_binary"
    assert down.reasons[0] == "glibc 2.36 (build) is newer than 2.31 (runtime)"
    assert down.build_libstdcxx == "3.4.30" and down.runtime_libstdcxx == "3.4.28"
