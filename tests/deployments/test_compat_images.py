"""The Debian 11 and 13 registry fixtures: pushed images whose ABI facts, read by the
scanner's reader from a copy pulled back with skopeo, are those of the bootstrapped rootfs."""

from __future__ import annotations

import subprocess

import pytest

from images.scanning.abi import image_abi, read_oci_layout
from tests.fixtures.compat import debian_abi_fixture  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "fixture,release,glibc", [("debian11_image", "11", "2.31"), ("debian13_image", "13", "2.41")]
)
def test_pushed_debian_images_carry_their_glibc(
    request, tmp_path, debian_abi, fixture, release, glibc
):
    reference, digest = request.getfixturevalue(fixture)
    assert reference.endswith(f"/runtime/debian:{release}") and digest.startswith("sha256:")
    layout = tmp_path / "oci"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{reference}", f"oci:{layout}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    pulled = image_abi(read_oci_layout(layout, tmp_path / "scratch"))
    assert (pulled.libc_kind, pulled.libc_version) == ("glibc", glibc)
    assert pulled.loader_paths == debian_abi[release].loader_paths
    assert [lib.soname for lib in pulled.libraries] == [
        lib.soname for lib in debian_abi[release].libraries
    ]
