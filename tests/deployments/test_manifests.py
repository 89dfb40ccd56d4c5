"""Manifest renderers (golden files, round-trips, bad input), their scripts, strict validation."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments.manifests import (
    ManifestError,
    ManifestInput,
    deployment_object,
    render_app_dockerfile,
    render_deployment,
    render_hostpath_daemonset,
)
from deployments.manifests.validation import (
    schema_version_for,
    supported_versions,
    validate_manifest,
)

GOLDEN = Path(__file__).parent / "golden"
SCRIPTS = Path(__file__).resolve().parents[2] / "deployments" / "manifests" / "scripts"
DIGEST = "sha256:" + "0123456789abcdef" * 4
RUNTIME = f"registry.example.com/runtime/debian12@{DIGEST}"
SHA = hashlib.sha256(b"orders binary").hexdigest()
TOKEN_REF = {"valueFrom": {"secretKeyRef": {"name": "portal-fetch-token", "key": "token"}}}
# The shape of a real portal token (bip_<prefix>_<urlsafe secret>).
TOKEN = "bip_0123456789ab_" + "Zz-_" * 10
HOSTILE = (
    "yes",
    "no",
    "on",
    "y",
    "null",
    "~",
    "1.10",
    "0o17",
    "1e3",
    "012",
    "true",
    "",
    " leading and trailing ",
    "key: value",
    "{{ .Values.secret }}",
    "'single' \"double\"",
    "line one\nline two\n",
    "tab\there",
    "# not a comment",
    "- not a list",
    "&anchor *alias !tag",
    "@at `tick` %percent |pipe >gt",
    "unicode: 部署 ✓",
    "back\\slash",
    "=",
    "carriage\r\nreturn",
)


def base_input(**changes: Any) -> ManifestInput:
    values: dict[str, Any] = {
        "service": "orders",
        "team": "payments",
        "environment": "prod",
        "namespace": "payments-prod",
        "release": 7,
        "strategy": "hostPath",
        "runtime_image": RUNTIME,
        "binary_version": "1.4.2",
        "binary_sha256": SHA,
        "binary_filename": "orders",
        "binary_download_url": "https://portal.example.com/api/v1/binaries/42/download/",
        "binary_artifact_ref": f"registry.example.com/binaries/orders@{DIGEST}",
        "app_image": f"registry.example.com/apps/orders@{DIGEST}",
        "env": (("TZ", "Asia/Shanghai"), ("LANG", "en_US.utf8")),
        "ports": (8080,),
        "replicas": 2,
        "cpu_request": "250m",
        "memory_request": "256Mi",
        "cpu_limit": "1",
        "memory_limit": "512Mi",
        "portal_url": "https://portal.example.com",
        "arch": "x86_64",
    }
    values.update(changes)
    return ManifestInput(**values)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _daemonset_yaml() -> str:
    return render_hostpath_daemonset(
        "prod",
        "binary-sync",
        "https://portal.example.com",
        (
            (
                "orders",
                "1.4.2",
                SHA,
                "https://portal.example.com/api/v1/binaries/42/download/",
                "orders",
            ),
            (
                "billing",
                "2.0.0+b5",
                "f" * 64,
                "https://portal.example.com/api/v1/binaries/7/download/",
                "billing",
            ),
        ),
        RUNTIME,
    )


# --- golden files -------------------------------------------------------------------------

STRATEGY_K8S = {"hostPath": "1.33", "initFetch": "1.33", "imageVolume": "1.35", "image": "1.33"}


@pytest.mark.parametrize("strategy", list(STRATEGY_K8S))
def test_deployment_golden(strategy: str) -> None:
    text = render_deployment(base_input(strategy=strategy), k8s_version=STRATEGY_K8S[strategy])
    _golden(f"deployment-{strategy}.yaml", text)
    assert (
        render_deployment(base_input(strategy=strategy), k8s_version=STRATEGY_K8S[strategy]) == text
    )  # deterministic


def test_daemonset_golden() -> None:
    _golden("daemonset-hostPath.yaml", _daemonset_yaml())


def test_dockerfile_golden() -> None:
    text = render_app_dockerfile(RUNTIME, "orders", (), ("-m", "release"))
    _golden("app.Dockerfile", text)


def test_golden_set_is_complete() -> None:
    names = sorted(path.name for path in GOLDEN.iterdir())
    assert names == sorted(
        [f"deployment-{s}.yaml" for s in STRATEGY_K8S]
        + ["daemonset-hostPath.yaml", "app.Dockerfile"]
    )


@pytest.mark.parametrize(
    "name", sorted(p.name for p in GOLDEN.glob("*.yaml")) if GOLDEN.exists() else []
)
def test_every_golden_manifest_validates_strictly(name: str) -> None:
    text = (GOLDEN / name).read_text(encoding="utf-8")
    versions = ["1.35", "1.37"] if "imageVolume" in name else ["1.25", "1.33", "1.35", "1.37"]
    for version in versions:
        result = validate_manifest(text, version)
        assert result.valid, result.errors
        assert result.k8s_version_used == version
        # the package's own (uncached) strict validation agrees
        for document in yaml.safe_load_all(text):
            kubernetes_validate.validate(document, version, strict=True)


# --- the rendered objects -----------------------------------------------------------------


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("strategy", list(STRATEGY_K8S))
def test_deployment_shape(strategy: str) -> None:
    m = base_input(strategy=strategy)
    obj = yaml.safe_load(render_deployment(m, k8s_version="1.35"))
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
    labels = obj["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "orders"
    assert labels["app.kubernetes.io/instance"] == "orders-prod"
    assert labels["app.kubernetes.io/version"] == "1.4.2"
    assert labels["app.kubernetes.io/managed-by"] == "base-image-portal"
    assert labels["app.kubernetes.io/part-of"] == "payments"
    release = json.loads(obj["metadata"]["annotations"]["baseimage.portal/release"])
    assert release["binarySha256"] == SHA and release["baseDigest"] == DIGEST
    assert release["release"] == 7
    pod = obj["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in _containers(obj):
        assert "@sha256:" in container["image"]
        sc = container["securityContext"]
        assert sc["runAsUser"] == 65532 and sc["runAsNonRoot"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
    app = pod["containers"][0]
    assert app["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert app["command"] == ["/opt/app/orders"]
    assert app["args"] == ["-m", "release"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    if strategy == "hostPath":
        assert volumes["binary"]["hostPath"] == {
            "path": "/data/bin/orders/1.4.2",
            "type": "Directory",
        }
        assert app["volumeMounts"][0] == {
            "name": "binary",
            "mountPath": "/opt/app",
            "readOnly": True,
        }
        assert app["image"] == RUNTIME
    elif strategy == "initFetch":
        assert "emptyDir" in volumes["binary"]
        init = pod["initContainers"][0]
        assert init["image"] == RUNTIME
        assert "sha256sum -c" in init["command"][2]
        env = {e["name"]: e.get("value") for e in init["env"]}
        assert env["BINARY_SHA256"] == SHA
        assert {"name": "PORTAL_TOKEN", **TOKEN_REF} in init["env"]
    elif strategy == "imageVolume":
        assert volumes["binary"]["image"] == {
            "reference": f"registry.example.com/binaries/orders@{DIGEST}",
            "pullPolicy": "IfNotPresent",
        }
    else:
        assert "binary" not in volumes
        assert app["image"] == f"registry.example.com/apps/orders@{DIGEST}"


def test_command_override_and_plus_in_version() -> None:
    m = base_input(
        strategy="hostPath",
        binary_version="2.0.0+build.5",
        command=("java", "-jar", "/opt/app/app.jar"),
        args=(),
    )
    obj = deployment_object(m, k8s_version="1.33")
    app = obj["spec"]["template"]["spec"]["containers"][0]
    assert app["command"] == ["java", "-jar", "/opt/app/app.jar"] and app["args"] == []
    assert obj["metadata"]["labels"]["app.kubernetes.io/version"] == "2.0.0_build.5"
    path = obj["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"]
    assert path == "/data/bin/orders/2.0.0+build.5"


# --- YAML-hostile values round-trip exactly -----------------------------------------------


@pytest.mark.parametrize("strategy", list(STRATEGY_K8S))
def test_hostile_values_round_trip(strategy: str) -> None:
    env = tuple((f"V{i}", value) for i, value in enumerate(HOSTILE))
    m = base_input(strategy=strategy, env=env, args=HOSTILE, command=HOSTILE[:3])
    text = render_deployment(m, k8s_version="1.35")
    app = yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]
    assert tuple((e["name"], e["value"]) for e in app["env"]) == env
    assert tuple(app["args"]) == HOSTILE
    assert tuple(app["command"]) == HOSTILE[:3]
    assert validate_manifest(text, "1.35").valid
    for value in ("yes", "on", "y", "null", "1.10", "1e3"):  # quoted for YAML 1.1 and 1.2
        assert f"- {value}\n" not in text and f"value: {value}\n" not in text


_yaml_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    env=st.lists(
        st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), _yaml_text),
        max_size=4,
        unique_by=lambda p: p[0],
    ),
    args=st.lists(_yaml_text.filter(lambda s: "\x00" not in s), max_size=4),
)
def test_any_text_round_trips(env: list[tuple[str, str]], args: list[str]) -> None:
    env = [(name, value.replace("\x00", "")) for name, value in env]
    m = base_input(strategy="initFetch", env=tuple(env), args=tuple(args))
    app = yaml.safe_load(render_deployment(m, k8s_version="1.33"))["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert [(e["name"], e["value"]) for e in app.get("env", [])] == env
    assert app["args"] == args


def test_dockerfile_hostile_args_round_trip() -> None:
    text = render_app_dockerfile(RUNTIME, "orders", (), HOSTILE)
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    cmd = [i for i in parser.structure if i["instruction"] == "CMD"]
    assert len(cmd) == 1
    assert json.loads(cmd[0]["value"]) == ["/opt/app/orders", *HOSTILE]


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_structure() -> None:
    text = render_app_dockerfile(RUNTIME, "orders", (), ("-m", "release"))
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    assert instructions[0] == ("FROM", RUNTIME)
    assert ("USER", "65532:65532") in instructions
    assert ("COPY", "--chown=0:0 --chmod=0555 orders /opt/app/orders") in instructions
    assert instructions[-1] == ("CMD", '["/opt/app/orders", "-m", "release"]')


@pytest.mark.skipif(
    not shutil.which("hadolint") and not Path(".venv/bin/hadolint").exists(), reason="no hadolint"
)
def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(".venv/bin/hadolint").resolve())
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render_app_dockerfile(RUNTIME, "orders", (), HOSTILE))
    result = subprocess.run(
        [hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runtime_image": "debian:12"}, "runtime_image must be a digest-pinned"),
        ({"binary_filename": "../etc/passwd"}, "binary_filename must be a plain file name"),
        ({"user": 0}, "non-root"),
        ({"args": ("a\x00b",)}, "NUL"),
    ],
)
def test_dockerfile_bad_input(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"runtime_image": RUNTIME, "binary_filename": "orders"} | kwargs
    with pytest.raises(ManifestError, match=message):
        render_app_dockerfile(**values)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"service": "Orders_1"}, "service must be a DNS-1123 label"),
        ({"service": "a/b"}, "service must be a DNS-1123 label"),
        ({"namespace": ""}, "namespace must be a DNS-1123 label"),
        ({"release": 0}, "release must be a positive integer"),
        ({"strategy": "nfs"}, "strategy must be one of"),
        (
            {"runtime_image": "registry.example.com/runtime/debian12:12"},
            "runtime_image must be a digest-pinned",
        ),
        ({"binary_version": "../../etc"}, "binary_version must be"),
        ({"binary_version": ".."}, "binary_version must be"),
        ({"binary_sha256": "ABC"}, "binary_sha256 must be 64 lowercase hex"),
        ({"binary_filename": "a b"}, "binary_filename must be a plain file name"),
        ({"binary_download_url": "file:///etc/passwd"}, "binary_download_url must be an http"),
        ({"binary_download_url": "https://x.example/a b"}, "binary_download_url must be an http"),
        ({"strategy": "initFetch", "binary_download_url": ""}, "binary_download_url is required"),
        (
            {"strategy": "imageVolume", "binary_artifact_ref": "reg.example/bin:latest"},
            "binary_artifact_ref must be",
        ),
        ({"strategy": "image", "app_image": ""}, "app_image must be a digest-pinned"),
        ({"env": (("1BAD=", "x"),)}, "env\\[0\\] name must match"),
        ({"env": (("A", "1"), ("A", "2"))}, "appears twice"),
        ({"env": (("A", "x\x00y"),)}, "NUL"),
        ({"ports": (0,)}, "ports must be integers 1-65535"),
        ({"ports": (80, 80)}, "ports must not repeat"),
        ({"replicas": -1}, "replicas must be an integer >= 0"),
        ({"cpu_request": "lots"}, "cpu_request must be a Kubernetes quantity"),
        (
            {"memory_request": "1Gi", "memory_limit": "512Mi"},
            "memory_limit 512Mi is below memory_request 1Gi",
        ),
        ({"hostpath_root": "/data/../etc"}, "hostpath_root must be an absolute"),
        ({"mount_path": "relative"}, "mount_path must be an absolute"),
        ({"arch": "z80"}, "arch 'z80' is not one of"),
        (
            {"strategy": "initFetch", "fetch_token_secret": "Bad_Name"},
            "fetch_token_secret must be a Secret name",
        ),
    ],
)
def test_bad_input_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        render_deployment(base_input(**changes), k8s_version="1.35")


def test_all_problems_are_listed() -> None:
    with pytest.raises(ManifestError) as caught:
        render_deployment(
            base_input(service="X", binary_sha256="z", ports=(0,)), k8s_version="1.35"
        )
    assert len(caught.value.errors) == 3


@pytest.mark.parametrize("version", ["1.33", "v1.34.2", "1.30"])
def test_image_volume_needs_1_35(version: str) -> None:
    with pytest.raises(ManifestError) as caught:
        render_deployment(base_input(strategy="imageVolume"), k8s_version=version)
    message = str(caught.value)
    assert "image volumes need Kubernetes 1.35 or newer; environment prod targets" in message
    assert f"targets {version.removeprefix('v')[:4]}" in message


@pytest.mark.parametrize("version", ["1.35", "v1.36.0", "1.40.0-rc.1"])
def test_image_volume_allowed_from_1_35(version: str) -> None:
    assert "image:" in render_deployment(base_input(strategy="imageVolume"), k8s_version=version)


def test_bad_k8s_version() -> None:
    with pytest.raises(ManifestError, match="k8s_version must look like 1.33"):
        render_deployment(base_input(), k8s_version="latest")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((("orders", "../x", SHA, "https://p.example/d", "orders"),), "version is not a valid"),
        ((("orders", "1", SHA, "ftp://p.example/d", "orders"),), "download_url must be an http"),
        ((("orders", "1", "nothex", "https://p.example/d", "orders"),), "sha256 must be 64"),
        ((("orders", "1", SHA, "https://p.example/d", "a/b"),), "filename must be a plain"),
        ((("orders", "1", SHA, "https://p.example/d"),), "must be \\(service, version"),
        (
            (
                ("orders", "1", SHA, "https://p.example/d", "o"),
                ("orders", "1", SHA, "https://p.example/d", "o"),
            ),
            "repeats orders 1",
        ),
    ],
)
def test_daemonset_bad_entries(entries: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        render_hostpath_daemonset("prod", "ns", "", entries, RUNTIME)


def test_daemonset_bad_image_and_env() -> None:
    with pytest.raises(ManifestError) as caught:
        render_hostpath_daemonset(
            "Prod", "ns", "", (), "busybox:latest", fetch_token_secret="a/b\nkey: x"
        )
    assert "environment must be a DNS-1123 label" in str(caught.value)
    assert "fetch_image must be a digest-pinned" in str(caught.value)
    assert "fetch_token_secret must be a Secret name" in str(caught.value)


def test_fetch_token_comes_from_a_secret_never_from_the_manifest() -> None:
    """Both downloaders read PORTAL_TOKEN from the named Secret; no Secret object is rendered."""
    config_map, daemon_set = yaml.safe_load_all(_daemonset_yaml())
    sync = daemon_set["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "PORTAL_TOKEN", **TOKEN_REF} in sync["env"]
    custom = yaml.safe_load_all(
        render_hostpath_daemonset(
            "prod", "ns", "", (), RUNTIME, fetch_token_secret="prod-fetch.token"
        )
    )
    env = list(custom)[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[-1]["valueFrom"]["secretKeyRef"] == {"name": "prod-fetch.token", "key": "token"}
    m = base_input(strategy="initFetch", fetch_token_secret="orders-fetch")
    init = deployment_object(m, k8s_version="1.33")["spec"]["template"]["spec"]["initContainers"]
    assert init[0]["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == "orders-fetch"
    for strategy in STRATEGY_K8S:
        text = render_deployment(base_input(strategy=strategy), k8s_version="1.35")
        assert "kind: Secret" not in text and "bip_" not in text
    assert "kind: Secret" not in _daemonset_yaml()
    assert "Authorization: Bearer" in config_map["data"]["sync.sh"]


# --- the shell scripts are their .sh files ------------------------------------------------


def _shipped(name: str) -> str:
    """What a pod runs for scripts/<name>: the file, with lib.sh's body where it sources lib.sh."""
    script = (SCRIPTS / name).read_text(encoding="utf-8")
    library = (SCRIPTS / "lib.sh").read_text(encoding="utf-8").split("\n\n", 1)[1]
    source = '# shellcheck source=SCRIPTDIR/lib.sh\n. "$(dirname "$0")/lib.sh"\n'
    assert script.count(source) == 1, f"{name} must source lib.sh once"
    return script.replace(source, library)


def test_rendered_scripts_are_the_sh_files() -> None:
    config_map = next(yaml.safe_load_all(_daemonset_yaml()))
    assert config_map["data"]["sync.sh"] == _shipped("sync.sh")
    text = render_deployment(base_input(strategy="initFetch"), k8s_version="1.33")
    init = yaml.safe_load(text)["spec"]["template"]["spec"]["initContainers"][0]
    assert init["command"] == ["sh", "-c", _shipped("fetch.sh")]
    # One source for the shared functions: they are defined in lib.sh only.
    functions = re.findall(
        r"^(\w+)\(\) \{$", (SCRIPTS / "lib.sh").read_text(encoding="utf-8"), re.MULTILINE
    )
    assert {"fail", "check_entry", "check_token", "fetch", "refused", "verify"} <= set(functions)
    for name in ("fetch.sh", "sync.sh"):
        defined = re.findall(
            r"^(\w+)\(\) \{$", (SCRIPTS / name).read_text(encoding="utf-8"), re.MULTILINE
        )
        assert not set(defined) & set(functions), f"{name} redefines a lib.sh function"


def test_rendered_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """What pods run (lib.sh spliced in) passes shellcheck, not only the files in the tree."""
    if not shutil.which("shellcheck"):
        pytest.skip("needs shellcheck (scripts/ensure-system-packages installs it)")
    config_map = next(yaml.safe_load_all(_daemonset_yaml()))
    text = render_deployment(base_input(strategy="initFetch"), k8s_version="1.33")
    init = yaml.safe_load(text)["spec"]["template"]["spec"]["initContainers"][0]
    for name, script in (
        ("sync.sh", config_map["data"]["sync.sh"]),
        ("fetch.sh", init["command"][2]),
    ):
        path = tmp_path / name
        path.write_text(script, encoding="utf-8")
        result = subprocess.run(
            ["shellcheck", "--shell=sh", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- the shell scripts, run for real with sh against a local HTTP server ------------------


class _TokenHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files only to `Authorization: Bearer <TOKEN>`, like the download endpoint."""

    seen_auth: list[str | None]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        self.seen_auth.append(auth)
        if auth != f"Bearer {TOKEN}":
            body = b'{"detail": "Invalid token.", "code": "authentication_failed"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def auth_log() -> list[str | None]:
    """The Authorization header of every request `http_root` received, in order."""
    return []


@pytest.fixture
def http_root(tmp_path: Path, auth_log: list[str | None]) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 to bearer TOKEN only: (directory, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(
        type("Handler", (_TokenHandler,), {"seen_auth": auth_log}), directory=str(served)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def only_wget(tmp_path: Path) -> str:
    """A PATH with wget but no curl (images that ship only wget take the other branch)."""
    if not shutil.which("wget"):
        pytest.skip("needs wget")
    bin_dir = tmp_path / "bin-wget"
    bin_dir.mkdir()
    for tool in ("sh", "wget", "sha256sum", "cut", "rm", "mv", "chmod", "mkdir", "sleep", "cat"):
        found = shutil.which(tool)
        assert found, f"{tool} is missing"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _sync_files(entries: tuple[Any, ...], tmp_path: Path) -> tuple[Path, Path]:
    """Render the DaemonSet and write its ConfigMap's files: (sync.sh, entries.tsv)."""
    config_map = next(
        yaml.safe_load_all(render_hostpath_daemonset("prod", "ns", "", entries, RUNTIME))
    )
    script = tmp_path / "sync.sh"
    script.write_text(config_map["data"]["sync.sh"])
    listing = tmp_path / "entries.tsv"
    listing.write_text(config_map["data"]["entries.tsv"])
    return script, listing


def _run_sync(
    script: Path, listing: Path, root: Path, *, token: str | None = TOKEN, path: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": path or os.environ["PATH"],
        "HOSTPATH_ROOT": str(root),
        "ENTRIES_FILE": str(listing),
        "SYNC_ONCE": "1",
    }
    if token is not None:
        env["PORTAL_TOKEN"] = token
    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_sync_script_installs_verified_binaries(
    http_root: tuple[Path, str], tmp_path: Path
) -> None:
    served, base = http_root
    payload = b"\x7fELF pretend binary\n" * 1000
    (served / "orders-bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    entries = (("orders", "1.0.0+b1", digest, f"{base}/orders-bin", "orders"),)
    script, listing = _sync_files(entries, tmp_path)
    root = tmp_path / "root"
    result = _run_sync(script, listing, root)
    assert result.returncode == 0, result.stderr
    installed = root / "orders" / "1.0.0+b1" / "orders"
    assert installed.read_bytes() == payload
    assert stat.S_IMODE(installed.stat().st_mode) == 0o555
    assert "installed orders 1.0.0+b1" in result.stdout
    # idempotent: a second pass finds it verified and does nothing
    again = _run_sync(script, listing, root)
    assert again.returncode == 0 and "installed" not in again.stdout
    # a tampered file on the node is replaced on the next pass
    installed.chmod(0o644)
    installed.write_bytes(b"tampered")
    healed = _run_sync(script, listing, root)
    assert healed.returncode == 0 and installed.read_bytes() == payload
    assert not any((root / ".staging").iterdir())


def test_sync_script_refuses_bad_sha256(http_root: tuple[Path, str], tmp_path: Path) -> None:
    served, base = http_root
    (served / "orders-bin").write_bytes(b"real content")
    wrong = hashlib.sha256(b"something else").hexdigest()
    script, listing = _sync_files(
        (("orders", "1.0.0", wrong, f"{base}/orders-bin", "orders"),), tmp_path
    )
    root = tmp_path / "root"
    result = _run_sync(script, listing, root)
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr and wrong in result.stderr
    assert not (root / "orders" / "1.0.0").exists()
    assert not any((root / ".staging").iterdir())


def test_sync_script_is_safe_against_hostile_values(
    http_root: tuple[Path, str], tmp_path: Path
) -> None:
    served, base = http_root
    payload = b"ok"
    (served / "good").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    canary = tmp_path / "PWNED"
    touch = f"touch${{IFS}}{canary}"
    hostile_url = f"{base}/x$({touch})`{touch}`;{touch}|{touch}&&{touch}'\"$HOME"
    entries = (
        ("evil", "1", good, hostile_url, "evil"),
        ("orders", "2", good, f"{base}/good", "orders"),
    )
    script, listing = _sync_files(entries, tmp_path)
    # entries written by hand, bypassing the renderer, must be refused by the script itself
    with listing.open("a") as handle:
        handle.write(f"../../escape\t1\t{good}\tx\t{base}/good\n")
        handle.write(f"svc\t..\t{good}\tx\t{base}/good\n")
        handle.write(f"svc\t1\t{good}\t../x\t{base}/good\n")
        handle.write(f"svc\t1\t{good}\tx\tfile:///etc/passwd\n")
    root = tmp_path / "root"
    result = _run_sync(script, listing, root)
    assert result.returncode == 1
    assert not canary.exists()
    assert (root / "orders" / "2" / "orders").read_bytes() == payload  # good entries still land
    assert sorted(p.name for p in root.iterdir()) == [".staging", "orders"]
    assert not (tmp_path / "escape").exists()
    for fragment in (
        "refusing service name",
        "refusing version",
        "refusing file name",
        "refusing URL",
    ):
        assert fragment in result.stderr


def _run_fetch(
    url: str, sha: str, dest: Path, *, token: str | None = TOKEN, path: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the init container's command as rendered; the Secret's value plays PORTAL_TOKEN."""
    obj = deployment_object(
        base_input(strategy="initFetch", binary_download_url=url, binary_sha256=sha),
        k8s_version="1.33",
    )
    init = obj["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e["value"] for e in init["env"] if "value" in e} | {
        "PATH": path or os.environ["PATH"],
        "DEST_DIR": str(dest),
    }
    secret_refs = [e for e in init["env"] if "valueFrom" in e]
    assert [e["name"] for e in secret_refs] == ["PORTAL_TOKEN"]
    if token is not None:
        env["PORTAL_TOKEN"] = token
    return subprocess.run(
        init["command"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_fetch_script_good_and_bad_sha(http_root: tuple[Path, str], tmp_path: Path) -> None:
    served, base = http_root
    payload = b"binary bytes" * 100
    (served / "orders").write_bytes(payload)
    dest = tmp_path / "dest"
    dest.mkdir()
    good = _run_fetch(f"{base}/orders", hashlib.sha256(payload).hexdigest(), dest)
    assert good.returncode == 0, good.stderr
    assert (dest / "orders").read_bytes() == payload
    assert stat.S_IMODE((dest / "orders").stat().st_mode) == 0o555

    other = tmp_path / "other"
    other.mkdir()
    bad = _run_fetch(f"{base}/orders", "0" * 64, other)
    assert bad.returncode == 1
    assert "sha256 mismatch" in bad.stderr
    assert list(other.iterdir()) == []

    missing = _run_fetch(f"{base}/nope", "0" * 64, other)
    assert missing.returncode == 1 and "download failed" in missing.stderr
    assert list(other.iterdir()) == []


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_fetch_script_sends_the_bearer_token(
    downloader: str,
    http_root: tuple[Path, str],
    auth_log: list[str | None],
    only_wget: str,
    tmp_path: Path,
) -> None:
    served, base = http_root
    payload = b"token-protected bytes" * 50
    (served / "orders").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    path = only_wget if downloader == "wget" else ""
    dest = tmp_path / "dest"
    dest.mkdir()
    good = _run_fetch(f"{base}/orders", digest, dest, path=path)
    assert good.returncode == 0, good.stderr
    assert (dest / "orders").read_bytes() == payload
    assert auth_log == [f"Bearer {TOKEN}"]

    for token, expected in (
        ("bip_0123456789ab_wrong", "the portal refused PORTAL_TOKEN (HTTP 401)"),
        (None, "PORTAL_TOKEN is empty: create the fetch-token Secret"),
        ("", "PORTAL_TOKEN is empty"),
        ("bip_x\nX-Evil: 1", "PORTAL_TOKEN holds characters a bearer token cannot contain"),
    ):
        refused = tmp_path / f"refused-{len(auth_log)}-{token is None}-{len(token or '')}"
        refused.mkdir()
        result = _run_fetch(f"{base}/orders", digest, refused, token=token, path=path)
        assert result.returncode != 0, (token, result.stdout)
        assert expected in result.stderr, result.stderr
        assert list(refused.iterdir()) == []  # nothing written, not even a .part file
    # only the wrong token reached the server: an empty or malformed one is refused locally
    assert auth_log == [f"Bearer {TOKEN}", "Bearer bip_0123456789ab_wrong"]


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_sync_script_needs_the_bearer_token(
    downloader: str,
    http_root: tuple[Path, str],
    auth_log: list[str | None],
    only_wget: str,
    tmp_path: Path,
) -> None:
    served, base = http_root
    payload = b"synced bytes"
    (served / "orders-bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    script, listing = _sync_files(
        (("orders", "1.0.0", digest, f"{base}/orders-bin", "orders"),), tmp_path
    )
    path = only_wget if downloader == "wget" else ""
    root = tmp_path / "root"
    wrong = _run_sync(script, listing, root, token="bip_0123456789ab_wrong", path=path)
    assert wrong.returncode == 1
    assert "the portal refused PORTAL_TOKEN (HTTP 401)" in wrong.stderr
    assert "download failed for orders 1.0.0" in wrong.stderr
    assert not (root / "orders").exists()
    assert not any((root / ".staging").iterdir())
    missing = _run_sync(script, listing, root, token=None, path=path)
    assert missing.returncode == 2 and "PORTAL_TOKEN is empty" in missing.stderr
    assert auth_log == ["Bearer bip_0123456789ab_wrong"]
    good = _run_sync(script, listing, root, path=path)
    assert good.returncode == 0, good.stderr
    assert (root / "orders" / "1.0.0" / "orders").read_bytes() == payload
    assert auth_log[-1] == f"Bearer {TOKEN}"


# --- validation ---------------------------------------------------------------------------


def test_supported_versions() -> None:
    versions = supported_versions()
    assert versions[0] == "1.25" and versions[-1] == "1.37"
    assert "1.33" in versions and "1.35" in versions


@pytest.mark.parametrize(
    ("requested", "used"),
    [
        ("1.33", "1.33"),
        ("v1.33.4", "1.33"),
        ("1.35.0-rc.1", "1.35"),
        ("1.40", "1.37"),
        ("1.9", "1.25"),
        ("1.20", "1.25"),
    ],
)
def test_version_mapping(requested: str, used: str) -> None:
    assert schema_version_for(requested) == used
    assert (
        validate_manifest(
            (GOLDEN / "deployment-hostPath.yaml").read_text(), requested
        ).k8s_version_used
        == used
    )


def test_broken_manifest_gives_validator_message() -> None:
    obj = yaml.safe_load((GOLDEN / "deployment-initFetch.yaml").read_text())
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"  # typo
    obj["spec"]["replicas"] = "two"
    result = validate_manifest(yaml.safe_dump(obj), "1.33")
    assert not result.valid
    assert (
        "Deployment/orders: spec.template.spec.containers.0: Additional properties are not "
        "allowed ('imagePullPolice' was unexpected)" in result.errors
    )
    assert any(
        e.startswith("Deployment/orders: spec.replicas: 'two' is not of type")
        for e in result.errors
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, "1.33", strict=True)


def test_image_volume_schema_by_version() -> None:
    text = (GOLDEN / "deployment-imageVolume.yaml").read_text()
    assert validate_manifest(text, "1.35").valid
    old = validate_manifest(text, "1.30")  # the field did not exist yet
    assert not old.valid and "('image' was unexpected)" in old.errors[0]


@pytest.mark.parametrize(
    ("text", "version", "message"),
    [
        ("a: [1,", "1.33", "not valid YAML"),
        ("", "1.33", "no Kubernetes objects"),
        ("---\n- 1\n", "1.33", "not a mapping"),
        ("kind: Deployment\n", "1.33", "apiVersion and kind are required"),
        (
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
            "1.33",
            "no schema for Widget",
        ),
        ("apiVersion: v1\nkind: ../../x\n", "1.33", "no schema for ../../x"),
        ("apiVersion: v1\nkind: ConfigMap\n", "latest", "not a Kubernetes version"),
    ],
)
def test_validation_bad_input(text: str, version: str, message: str) -> None:
    result = validate_manifest(text, version)
    assert not result.valid
    assert any(message in error for error in result.errors), result.errors


def test_multi_document_reports_each_document() -> None:
    good = (GOLDEN / "deployment-hostPath.yaml").read_text()
    bad = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\nextra: 1\n"
    result = validate_manifest(good + bad, "1.33")
    assert not result.valid
    assert result.errors == (
        "ConfigMap/c: (root): Additional properties are not allowed ('extra' was unexpected)",
        "ConfigMap/c: data.a: 1 is not of type 'string', 'null'",
    )


def test_input_errors_are_english_templates_the_portal_translates() -> None:
    """Each problem is an `images.texts.Text`: English as written, Chinese where it is shown."""
    from django.utils.translation import gettext, override

    from images.texts import Text, message_render
    from tests.i18n_support import compile_catalog

    with pytest.raises(ManifestError) as caught:
        render_deployment(
            base_input(service="X", binary_sha256="z", hostpath_root="/etc/bin"),
            k8s_version="1.x",
        )
    errors = caught.value.errors
    assert all(isinstance(e, Text) for e in errors), errors
    assert errors[0].startswith("service must be a DNS-1123 label") and "'X'" in errors[0]
    with pytest.raises(ManifestError) as daemonset:
        render_hostpath_daemonset("prod", "prod", "https://portal", [("a",)], RUNTIME)
    assert all(isinstance(e, Text) for e in daemonset.value.errors)
    compile_catalog()
    with override("zh-hans"):
        chinese = [message_render(e, gettext) for e in (*errors, *daemonset.value.errors)]
    for english, zh in zip((*errors, *daemonset.value.errors), chinese, strict=True):
        assert zh != english, english
    assert "'X'" in chinese[0] and "DNS-1123" in chinese[0]
    assert any("/etc" in zh and "系统目录" in zh for zh in chinese), chinese


def test_a_release_refused_by_the_renderer_says_why_in_the_readers_language() -> None:
    """The release service renders the renderer's English templates in the active language."""
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from deployments.services.releases import _render
    from tests.i18n_support import compile_catalog

    compile_catalog()
    m = base_input(strategy="imageVolume")
    for language, words in (("en", "strategy imageVolume is not available"), ("zh-hans", "不可用")):
        with translation.override(language), pytest.raises(ValidationError) as caught:
            _render(m, k8s_version="1.30")
        (message,) = caught.value.message_dict["manifest"]
        assert words in message and "1.30" in message
