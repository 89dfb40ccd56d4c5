"""Fixtures of the scanner's tests: the real syft on its own (Go) binary, scan settings.

Import the `*_fixture` functions into a test module to use the fixtures by their names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from images.scanning.syft import ScanTools, SyftResult, default_syft_binary, run_syft


def syft_go_binary() -> Path:
    """syft itself: a real Go binary with a module list (no Go toolchain needed)."""
    return Path(default_syft_binary())


@pytest.fixture(scope="session", name="syft_go_result")
def syft_go_result_fixture() -> SyftResult:
    return run_syft(f"file:{syft_go_binary()}", tools=ScanTools(syft=default_syft_binary()))


@pytest.fixture(scope="session", name="syft_go_document")
def syft_go_document_fixture(syft_go_result: SyftResult) -> dict[str, Any]:
    return json.loads(syft_go_result.raw)


@pytest.fixture(name="scan_settings")
def scan_settings_fixture(settings, tmp_path):
    """Scratch and SBOM storage of this test; the test transaction holds the job row."""
    settings.PORTAL_SCAN_WORK_DIR = str(tmp_path / "scan-work")
    settings.STORAGES = {
        **settings.STORAGES,
        "sboms": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "sboms")},
        },
    }
    settings.JOB_HEARTBEAT_SECONDS = 3600
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 1  # a registry down is retried once, quickly
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 0.2
    return settings
