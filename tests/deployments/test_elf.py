"""deployments.elf against real binaries compiled here and against binutils' own reading."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.elf import (
    BinaryAnalysisError,
    BinaryFacts,
    analyze_binary,
    compare_glibc,
)

SRC = Path(__file__).parent / "elf_src"

pytestmark = pytest.mark.skipif(
    not (shutil.which("gcc") and shutil.which("readelf") and shutil.which("objdump")),
    reason="needs gcc and binutils",
)


def _run(args: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{args} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Compile the fixtures once per session: name -> path."""
    out = tmp_path_factory.mktemp("elf")
    for name in ("hello.c", "foo.c", "usefoo.c", "newglibc.c"):
        shutil.copy(SRC / name, out / name)
    _run(["gcc", "-O1", "-o", "hello", "hello.c"], cwd=out)
    _run(["gcc", "-O1", "-static", "-o", "hello-static", "hello.c"], cwd=out)
    _run(["gcc", "-O1", "-static-pie", "-o", "hello-static-pie", "hello.c"], cwd=out)
    _run(["gcc", "-O1", "-fPIC", "-shared", "-o", "libfoo.so", "foo.c"], cwd=out)
    _run(
        [
            "gcc",
            "-O1",
            "-o",
            "usefoo",
            "usefoo.c",
            "-L.",
            "-lfoo",
            "-Wl,-rpath,$ORIGIN",
        ],
        cwd=out,
    )
    _run(["gcc", "-O1", "-o", "newglibc", "newglibc.c"], cwd=out)
    # The programs really run (so they are what they claim to be).
    assert _run([str(out / "usefoo")]).strip() == "42"
    assert _run([str(out / "hello-static")]).strip() == "hello"
    return {p.name: p for p in out.iterdir() if not p.name.endswith(".c")}


# --- what binutils says ---------------------------------------------------------------

READELF_MACHINES = {
    "Advanced Micro Devices X86-64": "x86_64",
    "AArch64": "aarch64",
    "ARM": "arm",
    "Intel 80386": "i386",
    "PowerPC64": "ppc64le",  # the patched fixtures stay little-endian
    "IBM S/390": "s390x",  # ... and 64-bit
    "RISC-V": "riscv64",
}


@dataclass(frozen=True)
class Binutils:
    machine: str
    bits: int
    interpreter: str
    needed: tuple[str, ...]
    glibc_versions_readelf: frozenset[str]
    glibc_versions_objdump: frozenset[str]
    has_dynamic: bool


def _glibc_max(versions: frozenset[str]) -> str:
    if not versions:
        return ""
    return max(versions, key=lambda v: [int(x) for x in v.split(".")])


def binutils_facts(path: Path) -> Binutils:
    header = _run(["readelf", "-h", str(path)])
    machine_name = re.search(r"Machine:\s+(.+)", header).group(1).strip()
    bits = 64 if "ELF64" in re.search(r"Class:\s+(\S+)", header).group(1) else 32
    program = _run(["readelf", "-l", str(path)])
    interp = re.search(r"\[Requesting program interpreter: (.+)\]", program)
    dynamic = _run(["readelf", "-d", str(path)])
    needed = tuple(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic))
    versions = _run(["readelf", "-V", str(path)])
    readelf_glibc = frozenset(re.findall(r"Name: GLIBC_(\d+(?:\.\d+)+)\b", versions))
    objdump = subprocess.run(
        ["objdump", "-T", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout  # static files have no dynamic symbol table: objdump exits 1, that's fine
    objdump_glibc = frozenset(re.findall(r"\(GLIBC_(\d+(?:\.\d+)+)\)", objdump))
    return Binutils(
        machine=READELF_MACHINES.get(machine_name, machine_name),
        bits=bits,
        interpreter=interp.group(1) if interp else "",
        needed=needed,
        glibc_versions_readelf=readelf_glibc,
        glibc_versions_objdump=objdump_glibc,
        has_dynamic="There is no dynamic section" not in dynamic,
    )


@pytest.mark.parametrize("name", ["hello", "usefoo", "newglibc", "libfoo.so"])
def test_dynamic_binaries_match_binutils(binaries: dict[str, Path], name: str) -> None:
    facts = analyze_binary(str(binaries[name]))
    truth = binutils_facts(binaries[name])
    assert facts.is_elf and facts.file_type == "elf"
    assert facts.machine == truth.machine == "x86_64"
    assert facts.bits == truth.bits == 64
    assert facts.interpreter == truth.interpreter
    assert facts.needed == truth.needed
    assert facts.linkage == "dynamic"
    # `objdump -T` lists the versions of imported symbols; `readelf -V` the version needs.
    assert truth.glibc_versions_readelf == truth.glibc_versions_objdump or name == "libfoo.so"
    assert facts.min_glibc == _glibc_max(truth.glibc_versions_readelf)
    # libfoo.so calls nothing from libc, so nothing tells which libc it was built for.
    assert facts.libc == ("" if name == "libfoo.so" else "glibc")


def test_specific_facts(binaries: dict[str, Path]) -> None:
    hello = analyze_binary(str(binaries["hello"]))
    assert hello.needed == ("libc.so.6",)
    assert hello.interpreter == "/lib64/ld-linux-x86-64.so.2"
    # Every program linked against glibc >= 2.34 needs __libc_start_main@GLIBC_2.34.
    assert compare_glibc(hello.min_glibc, "2.34") >= 0

    usefoo = analyze_binary(str(binaries["usefoo"]))
    assert usefoo.needed == ("libfoo.so", "libc.so.6")

    newer = analyze_binary(str(binaries["newglibc"]))
    assert newer.min_glibc == "2.36"  # arc4random@GLIBC_2.36
    assert compare_glibc(newer.min_glibc, hello.min_glibc) >= 0

    lib = analyze_binary(str(binaries["libfoo.so"]))
    assert lib.interpreter == ""
    assert lib.linkage == "dynamic"


@pytest.mark.parametrize("name", ["hello-static", "hello-static-pie"])
def test_static_binaries(binaries: dict[str, Path], name: str) -> None:
    facts = analyze_binary(str(binaries[name]))
    truth = binutils_facts(binaries[name])
    assert truth.interpreter == "" and truth.needed == ()
    if name == "hello-static-pie":
        assert truth.has_dynamic  # static-pie keeps a dynamic section for self-relocation
    assert facts == BinaryFacts(
        is_elf=True,
        file_type="elf",
        machine="x86_64",
        bits=64,
        linkage="static",
        interpreter="",
        needed=(),
        min_glibc="",
        libc="glibc",  # glibc's crt1.o leaves .note.ABI-tag
        elf_class="ELF64",
    )


def test_stripped_section_headers_fall_back_to_dynamic_segment(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """sstrip-style files have no section headers; versions come from DT_VERNEED."""
    data = bytearray(binaries["newglibc"].read_bytes())
    data[0x28:0x30] = b"\0" * 8  # e_shoff
    data[0x3C:0x40] = b"\0" * 4  # e_shnum, e_shstrndx
    stripped = tmp_path / "stripped"
    stripped.write_bytes(bytes(data))
    assert "Number of section headers:         0" in _run(["readelf", "-h", str(stripped)])
    assert analyze_binary(str(stripped)) == analyze_binary(str(binaries["newglibc"]))


@pytest.mark.parametrize(
    ("e_machine", "expected"),
    [
        (183, "aarch64"),
        (40, "arm"),
        (3, "i386"),
        (21, "ppc64le"),
        (22, "s390x"),
        (243, "riscv64"),
    ],
)
def test_machine_names_match_readelf(
    binaries: dict[str, Path], tmp_path: Path, e_machine: int, expected: str
) -> None:
    data = bytearray(binaries["hello-static"].read_bytes())
    data[0x12:0x14] = e_machine.to_bytes(2, "little")
    patched = tmp_path / f"m{e_machine}"
    patched.write_bytes(bytes(data))
    assert binutils_facts(patched).machine == expected
    assert analyze_binary(str(patched)).machine == expected


def test_large_sparse_file_is_read_lazily(binaries: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big"
    shutil.copy(binaries["hello"], big)
    with open(big, "r+b") as handle:
        handle.truncate(2 * 1024**3)  # 2 GiB, sparse
    tracemalloc.start()
    try:
        facts = analyze_binary(str(big))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.needed == ("libc.so.6",)
    assert peak < 20 * 1024**2, f"peak {peak} bytes"


# --- bad and non-ELF input --------------------------------------------------------------


@pytest.mark.parametrize("keep", [3, 20, 63, 64, 500, 3000, -200])
def test_truncated_elf_is_refused(binaries: dict[str, Path], tmp_path: Path, keep: int) -> None:
    data = binaries["hello"].read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(data[:keep])
    with pytest.raises(BinaryAnalysisError, match=r"truncated"):
        analyze_binary(str(truncated))


def test_corrupt_program_header_is_refused(binaries: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(binaries["hello"].read_bytes())
    data[0x20:0x28] = (2**40).to_bytes(8, "little")  # e_phoff far past the end
    corrupt = tmp_path / "corrupt"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(BinaryAnalysisError, match=r"program header table"):
        analyze_binary(str(corrupt))


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(BinaryAnalysisError, match=r"empty"):
        analyze_binary(str(empty))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        analyze_binary(str(tmp_path / "nope"))


def test_jar(tmp_path: Path) -> None:
    jar = tmp_path / "app.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: App\n")
        archive.writestr("App.class", b"\xca\xfe\xba\xbe")
    assert analyze_binary(str(jar)) == BinaryFacts(is_elf=False, file_type="jar")


def test_plain_zip_is_not_a_jar(tmp_path: Path) -> None:
    plain = tmp_path / "data.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("readme.txt", "hi")
    assert analyze_binary(str(plain)).file_type == "other"


def test_script(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    facts = analyze_binary(str(script))
    assert facts == BinaryFacts(is_elf=False, file_type="script")
    assert facts.machine == "" and facts.bits is None and facts.linkage == ""


def test_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(1234)
    noise = tmp_path / "noise"
    payload = bytes(rng.getrandbits(8) for _ in range(4096))
    assert not payload.startswith((b"\x7fELF", b"#!", b"PK"))
    noise.write_bytes(payload)
    assert analyze_binary(str(noise)) == BinaryFacts(is_elf=False, file_type="other")


def test_random_garbage_after_elf_magic_is_refused(tmp_path: Path) -> None:
    rng = random.Random(99)
    for index in range(30):
        garbage = tmp_path / f"g{index}"
        garbage.write_bytes(b"\x7fELF" + rng.randbytes(rng.randint(0, 4096)))
        try:
            facts = analyze_binary(str(garbage))
        except BinaryAnalysisError as exc:
            assert "ELF" in str(exc)
        else:  # a lucky header can parse; the result must still be well-formed
            assert facts.is_elf


# --- compare_glibc ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2.34", "2.4", 1),
        ("GLIBC_2.34", "GLIBC_2.4", 1),
        ("2.2.5", "2.3", -1),
        ("2.34", "2.34.0", 0),
        ("2.17", "GLIBC_2.17", 0),
        ("", "2.17", -1),
        ("", "", 0),
        ("2.36", "2.35", 1),
    ],
)
def test_compare_glibc(a: str, b: str, expected: int) -> None:
    assert compare_glibc(a, b) == expected
    assert compare_glibc(b, a) == -expected


@pytest.mark.parametrize("bad", ["GLIBC_PRIVATE", "2", "two.three", "2.x", "GLIBCXX_3.4"])
def test_compare_glibc_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a glibc version"):
        compare_glibc(bad, "2.17")
