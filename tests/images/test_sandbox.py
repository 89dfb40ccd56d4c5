"""The build sandbox (security review 2026-12, C1 and L7).

C1: a recipe may not reach outside its build. The policy fails it (BIP040-BIP044, at the
Dockerfile check and at request submit), the builder refuses it on its own (whatever the
policy file says), and a permitted RUN step runs in a network and PID namespace of its own:
it reaches neither the host's loopback nor its processes. The tools get a minimal
environment, and the registry credentials never reach `buildah bud`.

L7: a bootstrap mirror must be on PORTAL_BOOTSTRAP_MIRRORS, at request creation and in the
builder.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from images.builder import (
    BootstrapSpec,
    BuilderConfig,
    BuildError,
    bootstrap_rootfs,
    build_dockerfile,
    mirror_allowed,
    recipe_escapes,
    remove_image,
)
from images.builder.run import auth_file, tool_env
from images.builder.sandbox import sandbox_prefix
from images.models import BaseImage, ImageRequest
from images.recipes import RecipeError, parse_bootstrap_recipe
from portal.models import Team
from tests.images.factories import BaseImageFactory, ImageVersionFactory, TeamFactory

HOST = "127.0.0.1:5000"  # the demo registry (settings.PORTAL_DEFAULT_REGISTRY_URL)
DEBIAN = "sha256:" + "3" * 64
GCC = "sha256:" + "4" * 64
ENV_LINE = "ENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
BASE = f"FROM {HOST}/runtime/debian@{DEBIAN}\n{ENV_LINE}"

# The review's recipes and their relatives: each reaches outside its build one way.
ESCAPING = {
    "cache-mount-traversal": (
        "RUN --mount=type=cache,target=/var/cache/x,id=../../../../../../../.. "
        "sh -c 'cat /var/cache/x/etc/hostname'\n",
        "BIP040",
    ),
    "bind-mount": ("RUN --mount=type=bind,source=/,target=/host ls /host\n", "BIP040"),
    "secret-mount": ("RUN --mount=type=secret,id=x cat /run/secrets/x\n", "BIP040"),
    "mount-from-image": (
        "RUN --mount=type=bind,from=evil.example/x:1,target=/x ls /x\n",
        "BIP040",
    ),
    "network-host": ("RUN --network=host true\n", "BIP041"),
    "security-insecure": ("RUN --security=insecure true\n", "BIP041"),
    "add-url": ("ADD http://169.254.169.254/latest/meta-data/ /meta\n", "BIP042"),
    "add-git": ("ADD git@github.com:example/secret.git /src\n", "BIP042"),
    "add-git-https": ("ADD https://github.com/example/x.git#main /src\n", "BIP042"),
    "copy-from-external": ("COPY --from=evil.example/tools:1 /bin/x /x\n", "BIP043"),
    "copy-from-arg": ("ARG SRC=evil.example/x:1\nCOPY --from=${SRC} /x /x\n", "BIP043"),
    "onbuild": ("ONBUILD RUN curl http://127.0.0.1:8000/\n", "BIP044"),
}


@pytest.fixture
def catalog(demo_catalog: None) -> None:
    ImageVersionFactory(base_image=BaseImage.objects.get(name="build/gcc"), tag="12", digest=GCC)
    debian = BaseImage.objects.get(name="runtime/debian")
    ImageVersionFactory(base_image=debian, tag="12", digest=DEBIAN)


@pytest.fixture
def checker(catalog: None, make_token: object) -> APIClient:
    client = APIClient()
    team = Team.objects.get(name="payments")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(team, ['dockerfile:check'])}")
    return client


def _check(client: APIClient, text: str, purpose: str = "runtime-recipe") -> dict:
    response = client.post(
        "/api/v1/dockerfile-checks/",
        data=json.dumps({"dockerfile": text, "purpose": purpose}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


# --- C1: the policy fails them ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_c1_recipe_reaching_outside_its_build_fails_the_dockerfile_check(
    checker: APIClient, name: str
) -> None:
    body, rule = ESCAPING[name]
    result = _check(checker, BASE + body)
    assert result["verdict"] == "fail", result["findings"]
    (finding,) = [f for f in result["findings"] if f["rule"] == rule]
    assert finding["severity"] == "fail"
    assert finding["line"] == len((BASE + body).splitlines())
    build = _check(checker, f"FROM {HOST}/build/gcc@{GCC}\n" + body, "build-recipe")
    assert rule in {f["rule"] for f in build["findings"] if f["severity"] == "fail"}


def test_c1_copy_from_a_catalog_image_is_checked_like_from(checker: APIClient) -> None:
    pinned = _check(checker, BASE + f"COPY --from={HOST}/build/gcc@{GCC} /usr/bin/gcc /x\n")
    assert pinned["verdict"] == "pass", pinned["findings"]
    tagged = _check(checker, BASE + f"COPY --from={HOST}/build/gcc:12 /usr/bin/gcc /x\n")
    (finding,) = tagged["findings"]
    assert (finding["rule"], finding["severity"]) == ("BIP010", "warn")
    assert f"{HOST}/build/gcc@{GCC}" in finding["message"]
    stage = _check(
        checker,
        f"FROM {HOST}/build/gcc@{GCC} AS b\nRUN true\n{BASE}COPY --from=b /x /x\n"
        "COPY --from=0 /y /y\n",
    )
    assert stage["verdict"] == "pass", stage["findings"]


def test_c1_the_rules_are_for_recipes_service_dockerfiles_keep_their_cache_mounts(
    checker: APIClient,
) -> None:
    body = BASE + "RUN --mount=type=cache,target=/root/.cache true\n"
    result = _check(checker, body, "service")
    assert "BIP040" not in {f["rule"] for f in result["findings"]}


@pytest.mark.parametrize("name", ["cache-mount-traversal", "add-url", "onbuild"])
def test_c1_recipe_reaching_outside_fails_at_request_submit_and_cannot_be_approved(
    token_client: object, service_team: Team, admin_user: object, name: str
) -> None:
    body, rule = ESCAPING[name]
    ImageVersionFactory(
        base_image=BaseImageFactory(name="runtime/debian", owner_team=TeamFactory()),
        tag="12",
        digest=DEBIAN,
    )
    dev = token_client(service_team, ["images:read", "images:write"])  # type: ignore[operator]
    response = dev.post(
        "/api/v1/image-requests/",
        {
            "name": "runtime/debian-cache",
            "tag": "12-2",
            "kind": "runtime",
            "os_family": "debian",
            "os_version": "12",
            "recipe_kind": "dockerfile",
            "recipe": f"FROM runtime/debian:12\n{ENV_LINE}{body}",
            "justification": "apt cache",
            "submit": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    request = ImageRequest.objects.get(pk=response.json()["id"])
    assert request.state == "submitted" and request.policy_verdict == "fail"
    assert rule in {f["rule"] for f in request.policy_report["findings"]}
    admin = APIClient()
    admin.force_login(admin_user)
    response = admin.post(f"/api/v1/image-requests/{request.pk}/approve/")
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "policy_failed"
    assert not request.events.filter(kind="approved").exists()


# --- C1: the builder refuses them on its own --------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_c1_builder_refuses_a_recipe_reaching_outside_its_build(name: str, tmp_path: Path) -> None:
    body, rule = ESCAPING[name]
    config = BuilderConfig(
        storage_root=str(tmp_path / "root"),
        run_root=str(tmp_path / "run"),
        buildah="/nonexistent/buildah",  # nothing may run: the check comes first
    )
    with pytest.raises(BuildError) as caught:
        build_dockerfile(
            BASE + body,
            context_dir=str(tmp_path),
            tag="localhost/c1/escape:1",
            labels={},
            build_args={},
            config=config,
            log=lambda _: None,
        )
    assert caught.value.step == "sandbox check"
    assert "refuses this Dockerfile" in caught.value.message
    assert rule in {e.rule for e in recipe_escapes(BASE + body)}


def test_c1_builder_refuses_even_when_the_policy_file_lowers_the_rules(
    checker: APIClient, settings: object, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "severities: {BIP040: info, BIP041: info, BIP042: info, BIP043: info, BIP044: info}\n"
    )
    settings.PORTAL_POLICY_FILE = str(policy)  # type: ignore[attr-defined]
    text = BASE + ESCAPING["cache-mount-traversal"][0]
    assert _check(checker, text)["verdict"] == "pass"  # the misconfigured policy lets it by
    assert [e.rule for e in recipe_escapes(text)] == ["BIP040"]  # the builder does not


def test_c1_builder_checks_lines_another_parser_would_run_as_instructions() -> None:
    # BuildKit reads the middle lines as a heredoc body; buildah 1.28 has no heredocs and
    # would run them. The builder checks both readings.
    text = BASE + "RUN cat <<EOF\nRUN --mount=type=bind,source=/,target=/h ls /h\nEOF\n"
    assert [(e.rule, e.line) for e in recipe_escapes(text)] == [("BIP040", 4)]


def test_c1_builder_allows_copy_from_stages_and_the_pinned_images_only() -> None:
    pinned = f"{HOST}/build/gcc@{GCC}"
    text = f"FROM {pinned} AS b\nRUN true\n{BASE}COPY --from=b /x /x\nCOPY --from={pinned} /y /y\n"
    assert recipe_escapes(text, allowed_images=[pinned]) == []
    assert [e.rule for e in recipe_escapes(text)] == ["BIP043"]


def test_c1_tools_get_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://portal:canary@db/portal")
    monkeypatch.setenv("PORTAL_REGISTRY_DEFAULT_PASSWORD", "canary")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "canary")
    env = tool_env()
    assert "canary" not in json.dumps(env)
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LC_ALL"} | {
        name for name in env if name.lower().endswith("_proxy")
    }
    assert env["LC_ALL"] == "C.UTF-8" and env["PATH"]


def test_c1_registry_credentials_live_in_a_private_directory_and_are_removed(
    tmp_path: Path,
) -> None:
    config = BuilderConfig(
        storage_root=str(tmp_path),
        run_root=str(tmp_path),
        registry_username="canary",
        registry_password="canary-password",
    )
    with auth_file(config, ["registry.example:5000"]) as argv:
        path = Path(argv[1])
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.parent.name.startswith("bip-auth-")
    assert not path.exists() and not path.parent.exists()


# --- C1: a permitted RUN step runs in its own network and PID namespace -----------------------


def test_c1_sandbox_namespace_has_no_host_loopback_and_its_own_processes(tmp_path: Path) -> None:
    config = BuilderConfig(storage_root=str(tmp_path), run_root=str(tmp_path))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        probe = (
            "import os, socket\n"
            "print(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
            f"socket.create_connection(('127.0.0.1', {port}), 2)\n"
        )
        done = subprocess.run(
            [*sandbox_prefix(config), sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=tool_env(),
        )
    assert done.returncode == 1 and "ConnectionRefusedError" in done.stderr, done.stderr
    assert int(done.stdout.split()[0]) < 10  # the runner's few, not the host's


def test_c1_sandbox_that_cannot_start_runs_nothing_and_says_why(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = BuilderConfig(
        storage_root=str(tmp_path), run_root=str(tmp_path), slirp4netns="/nonexistent/slirp"
    )
    done = subprocess.run(
        [*sandbox_prefix(config), "touch", str(marker)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=tool_env(),
    )
    assert done.returncode == 125
    assert "build sandbox error" in done.stderr and "install slirp4netns" in done.stderr
    assert not marker.exists()
    assert sandbox_prefix(replace(config, sandbox=False)) == []


@pytest.mark.slow
def test_c1_run_step_reaches_neither_host_loopback_nor_host_processes(
    debian_base_image: tuple[str, str],
    oci_registry: object,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    oci_registry.start()  # type: ignore[attr-defined]
    _, digest = debian_base_image
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    dockerfile = (
        f"FROM {oci_registry.host}/runtime/debian@{digest}\n"  # type: ignore[attr-defined]
        # The registry's and the test's listening ports on the host's loopback.
        f"RUN for p in {port} {oci_registry.host.rsplit(':', 1)[1]}; do "  # type: ignore[attr-defined]
        'if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; '
        'then echo "LOOPBACK-REACHED $p"; else echo "LOOPBACK-CLOSED $p"; fi; done\n'
        'RUN echo "PROCS $(ls -d /proc/[0-9]* | wc -l)"; '
        # A host process with a marked command line (`[9]…`: the step must not match itself).
        "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'sleep [9]87654' "
        '| sed "s/^/HOST-PROCESS-SEEN /"; '
        f"if [ -e /proc/{os.getpid()}/cmdline ] && grep -q '[p]ytest' /proc/{os.getpid()}/cmdline; "
        'then echo "TEST-PID-SEEN"; else echo "TEST-PID-ABSENT"; fi\n'
        'RUN echo "ENV-KEYS $(env | cut -d= -f1 | sort | tr "\\n" " ")"\n'
    )
    lines: list[str] = []
    marked = subprocess.Popen(["sleep", "987654"])  # noqa: S607 - a test helper
    try:
        result = build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/c1/sandbox:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lines.append,
        )
        assert result.image_id  # the build still succeeds
        output = "\n".join(lines)
        assert not [line for line in lines if line.startswith("LOOPBACK-REACHED")], output
        assert f"LOOPBACK-CLOSED {port}" in lines, output
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected to the test's socket
        procs = int(next(line.split()[1] for line in lines if line.startswith("PROCS ")))
        host_procs = sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())
        assert procs < 20 < host_procs or procs < host_procs // 2, (procs, host_procs)
        assert "HOST-PROCESS-SEEN 0" in lines and "TEST-PID-ABSENT" in lines, output
        env_line = next(line for line in lines if line.startswith("ENV-KEYS "))
        assert "DATABASE_URL" not in env_line and "CELERY" not in env_line
    finally:
        marked.kill()
        marked.wait()
        listener.close()
        remove_image("localhost/c1/sandbox:1", buildah_config)


@pytest.mark.slow
def test_c1_run_step_still_reaches_the_package_sources(
    debian_base_image: tuple[str, str],
    oci_registry: object,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    try:  # the sandbox's egress is the host's: without it there is nothing to show
        socket.create_connection(("deb.debian.org", 80), 5).close()
    except OSError:
        pytest.skip("this machine cannot reach deb.debian.org")
    oci_registry.start()  # type: ignore[attr-defined]
    dockerfile = (
        f"FROM {oci_registry.host}/runtime/debian@{debian_base_image[1]}\n"  # type: ignore[attr-defined]
        "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello "
        "&& hello\n"
    )
    lines: list[str] = []
    try:
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/c1/egress:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lines.append,
        )
    finally:
        remove_image("localhost/c1/egress:1", buildah_config)
    assert "Hello, world!" in lines, "\n".join(lines[-30:])


# --- L7: bootstrap mirrors only from the allow-list -------------------------------------------


@pytest.mark.parametrize(
    ("mirror", "allowed"),
    [
        ("http://deb.debian.org/debian", True),
        ("http://deb.debian.org/debian/", True),
        ("http://deb.debian.org/debian/sub", True),
        ("http://deb.debian.org/debian-evil", False),
        ("http://deb.debian.org.evil.example/debian", False),
        ("http://deb.debian.org/debian@169.254.169.254/", False),
        ("http://deb.debian.org/debian/../../x", False),
        ("http://169.254.169.254/latest/", False),
        ("file:///etc", False),
    ],
)
def test_l7_mirror_allow_list_matches_by_path_segment(mirror: str, allowed: bool) -> None:
    assert mirror_allowed(mirror, ("http://deb.debian.org/debian",)) is allowed
    assert mirror_allowed(mirror, ()) is False


def test_l7_bootstrap_mirror_not_allowed_is_refused_at_request_creation(
    token_client: object, service_team: Team, settings: object
) -> None:
    settings.PORTAL_BOOTSTRAP_MIRRORS = ["http://deb.debian.org/debian"]  # type: ignore[attr-defined]
    dev = token_client(service_team, ["images:read", "images:write"])  # type: ignore[operator]

    def create(mirror: str, tag: str) -> object:
        return dev.post(
            "/api/v1/image-requests/",
            {
                "name": "runtime/debian-mirror",
                "tag": tag,
                "kind": "runtime",
                "os_family": "debian",
                "os_version": "12",
                "recipe_kind": "bootstrap",
                "recipe": json.dumps({"suite": "bookworm", "mirror": mirror}),
                "justification": "a mirror",
            },
            format="json",
        )

    for mirror in ("http://169.254.169.254/latest/meta-data/", "file:///etc/"):
        response = create(mirror, "12-ssrf")
        assert response.status_code == 400, response.json()
        assert "not an allowed bootstrap mirror" in json.dumps(response.json())
    assert not ImageRequest.objects.filter(name="runtime/debian-mirror").exists()
    assert create("http://deb.debian.org/debian", "12-ok").status_code == 201
    settings.PORTAL_BOOTSTRAP_MIRRORS = []  # type: ignore[attr-defined]
    with pytest.raises(RecipeError, match="none: the build machine's own apt sources"):
        parse_bootstrap_recipe('{"suite": "bookworm", "mirror": "http://x/"}', default_env={})


def test_l7_builder_refuses_a_mirror_not_on_the_allow_list(tmp_path: Path) -> None:
    config = BuilderConfig(
        storage_root=str(tmp_path),
        run_root=str(tmp_path),
        mmdebstrap="/nonexistent/mmdebstrap",  # nothing may run: the check comes first
        allowed_mirrors=("http://deb.debian.org/debian",),
    )
    spec = BootstrapSpec(suite="bookworm", mirror="http://169.254.169.254/debian")
    with pytest.raises(BuildError, match="refuses the bootstrap mirror") as caught:
        bootstrap_rootfs(spec, str(tmp_path / "out.tar"), config=config, log=lambda _: None)
    assert caught.value.step == "bootstrap mirror"
    assert not list(tmp_path.iterdir())
    nothing_allowed = BuilderConfig(storage_root=str(tmp_path), run_root=str(tmp_path))
    with pytest.raises(BuildError, match="none: only this machine's apt sources"):
        bootstrap_rootfs(
            BootstrapSpec(suite="bookworm", mirror="http://deb.debian.org/debian"),
            str(tmp_path / "out.tar"),
            config=nothing_allowed,
            log=lambda _: None,
        )
