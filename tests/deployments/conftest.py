"""Fixtures of the deployments tests: real gcc-compiled ELF files, isolated binary storage."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).parent / "elf_src"


def _run(args: list[str], cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{args} failed: {result.stderr}"


@pytest.fixture(scope="session")
def elf_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """gcc-compiled fixtures: hello (dynamic), hello-static, libfoo.so, usefoo (needs libfoo)."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("upload-elf")
    for name in ("hello.c", "foo.c", "usefoo.c"):
        shutil.copy(SRC / name, out / name)
    _run(["gcc", "-O1", "-o", "hello", "hello.c"], out)
    _run(["gcc", "-O1", "-static", "-o", "hello-static", "hello.c"], out)
    _run(["gcc", "-O1", "-fPIC", "-shared", "-o", "libfoo.so", "foo.c"], out)
    _run(["gcc", "-O1", "-o", "usefoo", "usefoo.c", "-L.", "-lfoo", "-Wl,-rpath,$ORIGIN"], out)
    return {p.name: p for p in out.iterdir() if not p.name.endswith(".c")}


@pytest.fixture
def binary_store_dir(settings, tmp_path: Path) -> dict[str, Path]:
    """Point binary storage and the upload temp dir at fresh directories of this test."""
    root = tmp_path / "store"
    temp = tmp_path / "upload-tmp"
    root.mkdir()
    temp.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "binaries": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    settings.PORTAL_UPLOAD_TEMP_DIR = str(temp)
    settings.PORTAL_URL = "https://portal.example.com"
    return {"root": root, "temp": temp}


def stored_files(root: Path) -> list[Path]:
    """Every file under the storage root."""
    return sorted(p for p in root.rglob("*") if p.is_file())
