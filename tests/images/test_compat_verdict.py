"""images.compat.verdict and images.compat.pairs with hand-written facts (golden)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from images.compat.pairs import PAIR_CHECK, PAIR_COMPATIBLE, libstdcxx_version, pair_verdict
from images.compat.verdict import BinaryFacts, ImageFacts, Library, binary_verdict

LIBC_231 = tuple(
    f"GLIBC_{v}"
    for v in "2.2.5 2.2.6 2.3 2.3.2 2.3.3 2.3.4 2.4 2.5 2.6 2.7 2.8 2.9 2.10 2.11 2.12 2.13 "
    "2.14 2.15 2.16 2.17 2.18 2.22 2.23 2.24 2.25 2.26 2.27 2.28 2.29 2.30".split()
) + ("GLIBC_PRIVATE",)
LIBC_236 = LIBC_231 + tuple(f"GLIBC_2.{n}" for n in range(31, 37)) + ("GLIBC_ABI_DT_RELR",)
LD = "/lib64/ld-linux-x86-64.so.2"


def image(libc: tuple[str, ...] = LIBC_236, version: str = "2.36", **extra) -> ImageFacts:
    libraries = (
        Library("/usr/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6", libc),
        Library(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "ld-linux-x86-64.so.2",
            ("GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.4", "GLIBC_PRIVATE"),
        ),
        Library("/usr/lib/x86_64-linux-gnu/libssl.so.3", "libssl.so.3", ("OPENSSL_3.0.0",)),
        Library(
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "libstdc++.so.6",
            tuple(f"GLIBCXX_3.4.{n}" for n in range(0, 31)) + ("CXXABI_1.3",),
        ),
    )
    base = {
        "arch": "amd64",
        "libc_kind": "glibc",
        "libc_version": version,
        "loader_paths": (LD, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "search_path": ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"),
        "libraries": libraries,
        "name": "runtime/debian:12",
    }
    base.update(extra)
    return ImageFacts(**base)


def binary(**extra) -> BinaryFacts:
    base = {
        "file_type": "elf",
        "arch": "x86_64",
        "machine": "x86_64",
        "elf_class": "ELF64",
        "linkage": "dynamic",
        "interpreter": LD,
        "libc": "glibc",
        "needed": ("libc.so.6",),
        "version_needs": (("libc.so.6", "GLIBC_2.2.5"), ("libc.so.6", "GLIBC_2.34")),
    }
    base.update(extra)
    return BinaryFacts(**base)


def keys(result) -> list[tuple[str, bool]]:
    return [(f.key, f.blocking) for f in result.findings]


def test_a_binary_whose_needs_the_image_defines_is_compatible_without_findings():
    result = binary_verdict(binary(), image())
    assert result.verdict == "compatible" and result.findings == ()
    assert result.as_dict() == {"verdict": "compatible", "findings": []}


def test_missing_glibc_versions_are_named_exactly_and_block():
    needs = (("libc.so.6", "GLIBC_2.2.5"), ("libc.so.6", "GLIBC_2.34"), ("libc.so.6", "GLIBC_2.33"))
    result = binary_verdict(binary(version_needs=needs), image(LIBC_231, "2.31"))
    assert result.verdict == "incompatible"
    (finding,) = result.findings
    assert finding.as_dict() == {
        "key": "version-missing:libc.so.6",
        "severity": "high",
        "blocking": True,
        "title": "libc.so.6 on runtime/debian:12 does not define GLIBC_2.33, GLIBC_2.34",
        "detail": "The binary needs libc.so.6 versions GLIBC_2.33, GLIBC_2.34 (.gnu.version_r); "
        "/usr/lib/x86_64-linux-gnu/libc.so.6 (glibc 2.31) defines 31 versions, not these.",
        "remediation": "rebuild against glibc ≤ 2.31 (in a build image whose glibc is no newer "
        "than runtime/debian:12's)",
    }


def test_the_remediation_hint_is_used_for_glibc():
    result = binary_verdict(
        binary(), image(LIBC_231, "2.31"), remediation_hint="rebuild in build/gcc:10 (glibc ≤ 2.31)"
    )
    assert result.findings[0].remediation == "rebuild in build/gcc:10 (glibc ≤ 2.31)"


def test_set_containment_not_the_highest_version_decides():
    # A "2.36" glibc that lacks GLIBC_2.34 (a vendor build with a hole): the highest version is
    # new enough, yet the binary needs the one that is missing.
    holed = tuple(v for v in LIBC_236 if v != "GLIBC_2.34")
    result = binary_verdict(binary(), image(holed, "2.36"))
    assert result.verdict == "incompatible"
    assert "GLIBC_2.34" in result.findings[0].title
    # ... and a binary needing only old versions passes on a target whose highest is older.
    old = binary(version_needs=(("libc.so.6", "GLIBC_2.2.5"), ("libc.so.6", "GLIBC_2.14")))
    assert binary_verdict(old, image(LIBC_231, "2.31")).verdict == "compatible"


def test_relr_needs_glibc_abi_dt_relr():
    relr = binary(version_needs=(("libc.so.6", "GLIBC_ABI_DT_RELR"), ("libc.so.6", "GLIBC_2.34")))
    assert binary_verdict(relr, image()).verdict == "compatible"
    result = binary_verdict(relr, image(LIBC_231, "2.31"))
    assert result.findings[0].title.endswith("does not define GLIBC_2.34, GLIBC_ABI_DT_RELR")


def test_arch_mismatch_blocks_with_aliases_understood():
    arm = binary(arch="aarch64", machine="aarch64", interpreter="/lib/ld-linux-aarch64.so.1")
    result = binary_verdict(arm, image())
    assert keys(result) == [("arch-mismatch", True), ("interpreter-missing", True)]
    assert result.findings[0].title == (
        "Architecture mismatch: the binary is aarch64, the image is x86_64"
    )
    assert (
        binary_verdict(
            arm, image(arch="arm64", loader_paths=("/lib/ld-linux-aarch64.so.1",))
        ).verdict
        == "compatible"
    )


def test_libc_kind_mismatch_blocks_musl_on_glibc_and_glibc_on_musl():
    musl = binary(
        libc="musl",
        interpreter="/lib/ld-musl-x86_64.so.1",
        needed=("libc.so",),
        version_needs=(),
    )
    result = binary_verdict(musl, image())
    assert keys(result) == [
        ("libc-mismatch", True),
        ("interpreter-missing", True),
        ("library-missing:libc.so", True),
    ]
    alpine = ImageFacts(
        arch="amd64",
        libc_kind="musl",
        libc_version="1.2.5",
        loader_paths=("/lib/ld-musl-x86_64.so.1",),
        search_path=("/lib", "/usr/local/lib", "/usr/lib"),
        libraries=(Library("/lib/ld-musl-x86_64.so.1", "libc.musl-x86_64.so.1"),),
        name="runtime/alpine:3.22",
    )
    assert binary_verdict(musl, alpine).verdict == "compatible"
    glibc_on_alpine = binary_verdict(binary(), alpine)
    assert keys(glibc_on_alpine)[:2] == [("libc-mismatch", True), ("interpreter-missing", True)]
    assert glibc_on_alpine.findings[0].remediation.startswith("rebuild it against musl")


def test_a_needed_library_not_on_the_search_path_blocks():
    result = binary_verdict(binary(needed=("libc.so.6", "libpq.so.5")), image())
    assert keys(result) == [("library-missing:libpq.so.5", True)]
    assert "/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu" in result.findings[0].detail


def test_origin_runpath_and_bundled_libraries_count_as_shipped():
    needs = (("libfoo.so", "FOO_1.0"), ("libc.so.6", "GLIBC_2.2.5"))
    origin = binary(
        needed=("libfoo.so", "libc.so.6"), runpath=("$ORIGIN/../lib",), version_needs=needs
    )
    result = binary_verdict(origin, image())
    assert result.verdict == "compatible"
    assert keys(result) == [("bundled-libraries", False)]
    named = binary(needed=("libfoo.so", "libc.so.6"), bundled=("libfoo.so",), version_needs=needs)
    assert binary_verdict(named, image()).verdict == "compatible"
    absolute = binary(needed=("libfoo.so", "libc.so.6"), runpath=("/opt/foo/lib",))
    assert keys(binary_verdict(absolute, image())) == [("library-missing:libfoo.so", True)]


def test_a_library_version_the_target_lacks_blocks_with_a_library_remediation():
    needs = (("libssl.so.3", "OPENSSL_3.0.0"), ("libssl.so.3", "OPENSSL_3.2.0"))
    result = binary_verdict(
        binary(needed=("libc.so.6", "libssl.so.3"), version_needs=needs), image()
    )
    (finding,) = result.findings
    assert finding.key == "version-missing:libssl.so.3" and finding.blocking
    assert finding.title == "libssl.so.3 on runtime/debian:12 does not define OPENSSL_3.2.0"
    assert "next to the binary" in finding.remediation


def test_libstdcxx_remediation_names_the_targets_version():
    needs = (("libstdc++.so.6", "GLIBCXX_3.4.32"), ("libstdc++.so.6", "GLIBCXX_3.4.9"))
    result = binary_verdict(
        binary(needed=("libstdc++.so.6", "libc.so.6"), version_needs=needs), image()
    )
    (finding,) = result.findings
    assert finding.title.endswith("does not define GLIBCXX_3.4.32")
    assert "(libstdc++ ≤ 3.4.30)" in finding.remediation


def test_glibc_private_is_a_warning_not_a_block():
    needs = (("ld-linux-x86-64.so.2", "GLIBC_PRIVATE"), ("libc.so.6", "GLIBC_2.34"))
    result = binary_verdict(
        binary(needed=("libc.so.6", "ld-linux-x86-64.so.2"), version_needs=needs), image()
    )
    assert result.verdict == "compatible"
    assert keys(result) == [("glibc-private", False)]
    assert result.findings[0].severity == "medium"


def test_static_binaries_pass_with_a_note_unless_the_arch_differs():
    static = binary(linkage="static", interpreter="", needed=(), version_needs=())
    result = binary_verdict(static, image())
    assert result.verdict == "compatible" and keys(result) == [("static-binary", False)]
    other = binary_verdict(replace(static, machine="aarch64", arch="aarch64"), image())
    assert other.verdict == "incompatible"
    assert keys(other) == [("arch-mismatch", True), ("static-binary", False)]


@pytest.mark.parametrize("file_type", ["jar", "script", "other"])
def test_non_elf_files_are_unknown(file_type):
    result = binary_verdict(BinaryFacts(file_type=file_type, arch="noarch"), image())
    assert result.verdict == "unknown"
    assert keys(result) == [("not-elf", False)]
    assert file_type in result.findings[0].title


# --- the build/runtime pair rule ---------------------------------------------------------


def test_pair_rule_glibc_and_libstdcxx_no_newer_than_the_runtime():
    gcc12 = image(name="build/gcc:12")
    newer_runtime = image(
        LIBC_236 + ("GLIBC_2.38",),
        "2.41",
        libraries=(
            *image().libraries[:3],
            Library("/usr/lib/libstdc++.so.6", "libstdc++.so.6", ("GLIBCXX_3.4.33",)),
        ),
    )
    ok = pair_verdict(gcc12, newer_runtime)
    assert ok.verdict == PAIR_COMPATIBLE and ok.reasons == ()
    assert (ok.build_glibc, ok.runtime_glibc) == ("2.36", "2.41")
    assert (ok.build_libstdcxx, ok.runtime_libstdcxx) == ("3.4.30", "3.4.33")
    assert pair_verdict(gcc12, gcc12).verdict == PAIR_COMPATIBLE
    back = pair_verdict(newer_runtime, gcc12)
    assert back.verdict == PAIR_CHECK
    assert back.reasons == (
        "glibc 2.41 (build) is newer than 2.36 (runtime)",
        "libstdc++ 3.4.33 (build) is newer than 3.4.30 (runtime)",
    )


def test_pair_rule_arch_libc_and_missing_libstdcxx():
    gcc12 = image()
    arm = replace(gcc12, arch="arm64")
    assert pair_verdict(gcc12, arm).reasons == ("architectures differ: x86_64 vs aarch64",)
    musl = ImageFacts(arch="amd64", libc_kind="musl", libc_version="1.2.5")
    assert "C libraries differ: glibc vs musl" in pair_verdict(gcc12, musl).reasons
    no_cxx = replace(gcc12, libraries=gcc12.libraries[:3])
    assert libstdcxx_version(no_cxx) == ""
    assert pair_verdict(gcc12, no_cxx).reasons == (
        "the runtime has no libstdc++.so.6 (C++ binaries must bundle it)",
    )
    assert pair_verdict(no_cxx, gcc12).verdict == PAIR_COMPATIBLE
    unknown = replace(gcc12, libc_version="")
    assert pair_verdict(unknown, gcc12).reasons == ("a glibc version is unknown",)
