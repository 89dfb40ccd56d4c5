"""The scanner's pure parts: os-release → OSV ecosystem, syft-json normalisation, the ABI
reader's layer handling (whiteouts, symlinks inside the image), the CycloneDX export."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from images.scanning.abi import AbiError, image_abi, read_oci_layout
from images.scanning.cyclonedx import cyclonedx_json
from images.scanning.ecosystems import osv_ecosystem, parse_os_release, syft_distro_os_release
from images.scanning.normalize import normalize_packages, unmapped_kinds
from images.scanning.syft import ScanTools, SyftError, copy_image, default_syft_binary, run_syft
from tests.images.scan_fixtures import syft_go_document_fixture, syft_go_result_fixture  # noqa: F401

OS_RELEASE = Path(__file__).parent.parent / "fixtures" / "os-release"


@pytest.mark.parametrize(
    ("fixture", "ecosystem"),
    [
        ("debian-12", "Debian:12"),
        ("debian-trixie-sid", ""),  # no release: never matched against a release's advisories
        ("ubuntu-22.04", "Ubuntu:22.04:LTS"),
        ("ubuntu-23.10", "Ubuntu:23.10"),  # not an LTS release
        ("alpine-3.20", "Alpine:v3.20"),  # major.minor of 3.20.3
        ("rocky-9", "Rocky Linux:9"),
        ("almalinux-9", "AlmaLinux:9"),
        ("openeuler-22.03-sp3", "openEuler:22.03-LTS-SP3"),
        ("rhel-9", "Red Hat:enterprise_linux:9"),
        ("centos-7", ""),  # OSV has no CentOS ecosystem
    ],
)
def test_os_release_to_osv_ecosystem(fixture, ecosystem):
    assert osv_ecosystem(parse_os_release((OS_RELEASE / fixture).read_text())) == ecosystem


def test_os_release_parsing_handles_quotes_comments_and_junk():
    parsed = parse_os_release('# comment\nID="debian"\nVERSION_ID=\'12\'\nnot a line\nX="a b"\n')
    assert parsed == {"ID": "debian", "VERSION_ID": "12", "X": "a b"}
    assert osv_ecosystem({}) == ""
    assert osv_ecosystem({"ID": "debian", "VERSION_ID": "bookworm"}) == ""


def test_syft_distro_keys_map_to_os_release():
    distro = {"id": "ubuntu", "versionID": "22.04", "version": "22.04.4 LTS (Jammy Jellyfish)"}
    assert osv_ecosystem(syft_distro_os_release(distro)) == "Ubuntu:22.04:LTS"
    assert syft_distro_os_release({"idLike": ["rhel", "fedora"]}) == {"ID_LIKE": "rhel fedora"}


def _artifact(kind, name, version, metadata=None, purl=""):
    return {
        "type": kind,
        "name": name,
        "version": version,
        "metadata": metadata or {},
        "purl": purl,
    }


def test_normalisation_rules_per_package_kind():
    doc = {
        "artifacts": [
            # dpkg: Source with a version, Source without one, no Source at all
            _artifact("deb", "libc6", "2.36-9", {"source": "glibc", "architecture": "amd64"}),
            _artifact(
                "deb",
                "libpcre2-8-0",
                "10.42-1+b1",
                {"source": "pcre2", "sourceVersion": "10.42-1", "architecture": "amd64"},
            ),
            _artifact("deb", "bash", "5.2.15-2+b2", {"architecture": "amd64"}),
            # rpm: epoch kept as E:V-R, source from sourceRpm (with the binary's epoch)
            _artifact(
                "rpm",
                "openssl-libs",
                "1:3.0.7-27.el9",
                {
                    "name": "openssl-libs",
                    "version": "3.0.7",
                    "release": "27.el9",
                    "epoch": 1,
                    "architecture": "x86_64",
                    "sourceRpm": "openssl-3.0.7-27.el9.src.rpm",
                },
            ),
            _artifact(
                "rpm",
                "bash",
                "5.1.8-9.el9",
                {
                    "name": "bash",
                    "version": "5.1.8",
                    "release": "9.el9",
                    "epoch": None,
                    "architecture": "x86_64",
                    "sourceRpm": "bash-5.1.8-9.el9.src.rpm",
                },
            ),
            # apk: origin is the source
            _artifact(
                "apk",
                "libcrypto3",
                "3.3.2-r0",
                {"package": "libcrypto3", "originPackage": "openssl", "architecture": "x86_64"},
            ),
            # language packages
            _artifact("go-module", "golang.org/x/net", "v0.33.0", {"architecture": "amd64"}),
            _artifact("go-module", "stdlib", "go1.23.4"),
            _artifact("python", "requests", "2.32.3"),
            _artifact("npm", "lodash", "4.17.21"),
            _artifact("rust-crate", "serde", "1.0.210"),
            _artifact(
                "java-archive",
                "jackson-databind",
                "2.17.0",
                purl="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.0",
            ),
            _artifact("binary", "python", "3.11.2"),  # no OSV ecosystem: kept in the SBOM only
            _artifact("deb", "libc6", "2.36-9", {"source": "glibc", "architecture": "amd64"}),
            _artifact("deb", "", "1"),  # nameless: skipped
        ]
    }
    packages = normalize_packages(doc, distro_ecosystem="Debian:12")
    by_name = {(p.kind, p.name): p for p in packages}
    libc = by_name[("deb", "libc6")]
    assert (libc.source_name, libc.source_version, libc.arch) == ("glibc", "2.36-9", "amd64")
    pcre = by_name[("deb", "libpcre2-8-0")]
    assert (pcre.source_name, pcre.source_version) == ("pcre2", "10.42-1")
    bash = by_name[("deb", "bash")]
    assert (bash.source_name, bash.source_version) == ("bash", "5.2.15-2+b2")
    assert libc.ecosystem == "Debian:12"
    ssl = by_name[("rpm", "openssl-libs")]
    assert (ssl.version, ssl.source_name, ssl.source_version) == (
        "1:3.0.7-27.el9",
        "openssl",
        "1:3.0.7-27.el9",
    )
    assert by_name[("rpm", "bash")].version == "5.1.8-9.el9"
    apk = by_name[("apk", "libcrypto3")]
    assert (apk.source_name, apk.version) == ("openssl", "3.3.2-r0")
    ecosystems = {(p.ecosystem, p.name, p.version) for p in packages}
    assert ("Go", "golang.org/x/net", "0.33.0") in ecosystems
    assert ("Go", "stdlib", "1.23.4") in ecosystems
    assert ("PyPI", "requests", "2.32.3") in ecosystems
    assert ("npm", "lodash", "4.17.21") in ecosystems
    assert ("crates.io", "serde", "1.0.210") in ecosystems
    assert ("Maven", "com.fasterxml.jackson.core:jackson-databind", "2.17.0") in ecosystems
    assert len(packages) == 12  # the duplicate libc6, the nameless and the binary are not rows
    assert unmapped_kinds(doc) == {"binary": 1}


def test_distro_packages_without_a_known_release_are_never_in_a_distro_ecosystem():
    doc = {"artifacts": [_artifact("deb", "libc6", "2.36-9", {"source": "glibc"})]}
    (package,) = normalize_packages(doc, distro_ecosystem="")
    assert package.ecosystem == "deb:unknown"


# --- the ABI reader on synthetic layers -------------------------------------------------


def _tar(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                archive.addfile(info)
            else:
                data = value if isinstance(value, bytes) else value.encode()
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _layout(tmp_path: Path, layers: list[bytes]) -> Path:
    layout = tmp_path / "oci"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "config": put(b"{}"),
        "layers": [put(layer) for layer in layers],
    }
    index = {"schemaVersion": 2, "manifests": [put(json.dumps(manifest).encode())]}
    (layout / "index.json").write_text(json.dumps(index))
    return layout


@pytest.fixture(scope="module")
def shared_lib(tmp_path_factory) -> bytes:
    """A real shared object with a version script: libdemo.so.1 defining DEMO_1.0, DEMO_2.0."""
    work = tmp_path_factory.mktemp("lib")
    (work / "demo.c").write_text("int one(void){return 1;}\nint two(void){return 2;}\n")
    (work / "demo.map").write_text(
        "DEMO_1.0 { global: one; local: *; };\nDEMO_2.0 { two; } DEMO_1.0;\n"
    )
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(work / "libdemo.so.1"),
            str(work / "demo.c"),
            "-Wl,-soname,libdemo.so.1",
            f"-Wl,--version-script={work / 'demo.map'}",
        ],
        check=True,
    )
    return (work / "libdemo.so.1").read_bytes()


def test_abi_layers_whiteouts_and_symlinks(tmp_path, shared_lib):
    lower = _tar(
        [
            ("usr", "dir", None),
            ("usr/lib", "dir", None),
            ("usr/lib/x86_64-linux-gnu", "dir", None),
            ("usr/lib/x86_64-linux-gnu/libdemo.so.1", "file", shared_lib),
            ("usr/lib/x86_64-linux-gnu/libgone.so.1", "file", shared_lib),
            ("usr/lib/x86_64-linux-gnu/libnotelf.so.1", "file", b"just text"),
            ("lib", "link", "usr/lib"),  # merged /usr
            ("opt/old", "dir", None),
            ("opt/old/lib", "dir", None),
            ("opt/old/lib/libold.so.1", "file", shared_lib),
            ("etc/ld.so.conf", "file", "include /etc/ld.so.conf.d/*.conf\n"),
            ("etc/ld.so.conf.d/old.conf", "file", "# old\n/opt/old/lib\n"),
            # a link pointing out of the image: resolved inside it, never on this machine
            ("usr/lib/x86_64-linux-gnu/libescape.so.1", "link", "/../../../../etc/passwd"),
        ]
    )
    upper = _tar(
        [
            ("usr/lib/x86_64-linux-gnu/.wh.libgone.so.1", "file", b""),
            ("opt/old/.wh..wh..opq", "file", b""),  # the directory's lower contents are gone
        ]
    )
    tree = read_oci_layout(_layout(tmp_path, [lower, upper]), tmp_path / "scratch")
    facts = image_abi(tree)
    sonames = {lib.soname for lib in facts.libraries}
    assert sonames == {"libdemo.so.1"}
    demo = facts.library("libdemo.so.1")
    assert demo.versions == ["DEMO_1.0", "DEMO_2.0"]
    assert demo.path == "/usr/lib/x86_64-linux-gnu/libdemo.so.1"
    assert "/lib/x86_64-linux-gnu/libdemo.so.1" in demo.names
    assert "/lib/x86_64-linux-gnu" in facts.search_path
    assert facts.libc_kind == ""  # no libc.so.6, no musl loader


def test_abi_reader_refuses_a_broken_layout(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(AbiError):
        read_oci_layout(tmp_path, tmp_path / "scratch")


# --- the tools ---------------------------------------------------------------------------


def test_copy_image_refuses_a_tag_reference(tmp_path):
    with pytest.raises(ValueError, match="digest-pinned"):
        copy_image("127.0.0.1:5000/runtime/debian:12", tmp_path, tools=ScanTools())


def test_run_syft_errors_are_clear(tmp_path):
    tools = ScanTools(syft=default_syft_binary(), timeout=60)
    with pytest.raises(ValueError, match="unsupported syft source"):
        run_syft("docker:debian", tools=tools)
    with pytest.raises(SyftError) as caught:
        run_syft(f"file:{tmp_path / 'missing'}", tools=tools)
    assert "failed" in caught.value.message
    with pytest.raises(SyftError, match="not installed"):
        run_syft(f"file:{tmp_path}", tools=ScanTools(syft=str(tmp_path / "no-syft")))


def test_cyclonedx_export_of_a_real_syft_document_validates(syft_go_document):
    text = cyclonedx_json(syft_go_document, subject_name="syft", digest="sha256:" + "a" * 64)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    purls = {c.get("purl") for c in bom["components"]}
    assert "pkg:golang/github.com/anchore/syft@v1.18.1" in purls
    # a broken document still gives a valid (nearly empty) BOM, never a crash
    broken = {"artifacts": [{"name": "x", "purl": "pkg:%%%"}, "junk", {"version": "1"}]}
    text = cyclonedx_json(broken, subject_name="x", digest="sha256:" + "b" * 64)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_abi_of_a_musl_image_uses_its_path_file(tmp_path, shared_lib):
    layer = _tar(
        [
            ("lib/ld-musl-x86_64.so.1", "file", shared_lib),
            ("lib/libc.musl-x86_64.so.1", "link", "ld-musl-x86_64.so.1"),
            ("usr/lib/libdemo.so.1", "file", shared_lib),
            ("opt/musl/libdemo2.so.1", "file", shared_lib),
            ("etc/ld-musl-x86_64.path", "file", "/lib:/opt/musl\n"),
        ]
    )
    tree = read_oci_layout(_layout(tmp_path, [layer]), tmp_path / "scratch")
    facts = image_abi(tree, musl_version="1.2.5-r0")
    assert (facts.libc_kind, facts.libc_version) == ("musl", "1.2.5-r0")
    assert facts.loader_paths == ["/lib/ld-musl-x86_64.so.1"]
    assert facts.search_path == ["/lib", "/opt/musl"]  # the path file replaces the default
    assert {lib.path for lib in facts.libraries} == {
        "/lib/ld-musl-x86_64.so.1",
        "/opt/musl/libdemo2.so.1",
    }


def test_registry_credentials_go_through_a_private_auth_file(tmp_path):
    import base64
    import stat

    from images.scanning.syft import _auth_file

    tools = ScanTools(username="bot", password="s3cret")
    with _auth_file(tools, "registry.example:5000") as argv:
        assert argv[0] == "--src-authfile"
        path = Path(argv[1])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        auth = json.loads(path.read_text())["auths"]["registry.example:5000"]["auth"]
        assert base64.b64decode(auth) == b"bot:s3cret"
    assert not path.exists()
    with _auth_file(ScanTools(), "registry.example:5000") as argv:
        assert argv == []
    assert "s3cret" not in repr(tools)
