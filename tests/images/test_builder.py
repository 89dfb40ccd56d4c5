"""images.builder with real buildah, mmdebstrap, Debian's docker-registry and skopeo."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from images.builder import (
    RUNTIME_ENV,
    BootstrapSpec,
    BuildCancelled,
    BuilderConfig,
    BuildError,
    BuildTimeout,
    PullUnavailable,
    PushUnavailable,
    bootstrap_command,
    bootstrap_rootfs,
    build_dockerfile,
    image_from_rootfs,
    oci_architecture,
    oci_labels,
    push_image,
    remove_image,
)
from images.registry import RegistryClient
from tests.fixtures.registry import LocalRegistry

CREATED = datetime(2025, 5, 20, 8, 30, tzinfo=UTC)


def skopeo(reference: str, *flags: str) -> dict:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *flags, f"docker://{reference}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def processes_matching(text: str) -> list[str]:
    """Command lines of live processes containing `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found


# --- pure parts ---------------------------------------------------------------------------


def test_oci_labels() -> None:
    labels = oci_labels(
        title="build/gcc",
        version="12",
        source_request="https://portal/image-requests/7/",
        recipe_text="FROM x\n",
        created=datetime(2025, 5, 20, 16, 30, tzinfo=timezone(timedelta(hours=8))),
        revision="abc",
    )
    assert labels == {
        "org.opencontainers.image.title": "build/gcc",
        "org.opencontainers.image.version": "12",
        "org.opencontainers.image.created": "2025-05-20T08:30:00Z",
        "org.opencontainers.image.source": "https://portal/image-requests/7/",
        "org.opencontainers.image.revision": "abc",
        "io.baseimage.portal.request": "https://portal/image-requests/7/",
        "io.baseimage.portal.recipe-sha256": hashlib.sha256(b"FROM x\n").hexdigest(),
    }


def test_oci_labels_need_aware_time_and_names() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        oci_labels(
            title="a", version="1", source_request="r", recipe_text="", created=datetime(2025, 1, 1)
        )
    with pytest.raises(ValueError, match="title and version are required"):
        oci_labels(title="", version="1", source_request="r", recipe_text="", created=CREATED)


def test_bootstrap_command_defaults_to_machine_apt_sources(buildah_config: BuilderConfig) -> None:
    argv = bootstrap_command(BootstrapSpec(), "/tmp/out.tar", config=buildah_config)
    assert argv[0] == "mmdebstrap"
    assert argv[-2:] == ["bookworm", "/tmp/out.tar"]  # no mirror: this machine's apt sources
    assert "--variant=minbase" in argv
    assert "--include=locales" in argv
    assert any("locale-gen" in a for a in argv)
    assert any("apt-get clean" in a for a in argv)
    assert not any("://" in a for a in argv)


def test_bootstrap_command_with_packages_and_mirror(buildah_config: BuilderConfig) -> None:
    spec = BootstrapSpec(
        packages=("build-essential", "ca-certificates"),
        mirror="http://127.0.0.1:9/debian",
        locale="",
    )
    argv = bootstrap_command(spec, "/tmp/o.tar", config=buildah_config)
    assert "--include=build-essential,ca-certificates" in argv
    assert argv[-3:] == ["bookworm", "/tmp/o.tar", "http://127.0.0.1:9/debian"]
    assert not any("locale-gen" in a for a in argv)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"suite": "Bookworm; rm -rf /"}, "invalid suite"),
        ({"variant": "huge"}, "invalid mmdebstrap variant"),
        ({"packages": ("ok", "bad name")}, "invalid Debian package name"),
        ({"packages": "vim"}, "list of package names"),
        ({"mirror": "deb.example/debian"}, "invalid mirror"),
        ({"mirror": "http://x/ y"}, "invalid mirror"),
        ({"locale": "en_US.UTF-8"}, "invalid locale line"),
    ],
)
def test_bad_bootstrap_spec(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BootstrapSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"storage_root": ""}, "needs a storage_root"),
        ({"isolation": "docker"}, "unknown buildah isolation"),
        ({"registry_username": "u"}, "both a registry username and a password"),
        ({"timeout": 0}, "timeout must be positive"),
    ],
)
def test_bad_builder_config(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BuilderConfig(**{"storage_root": "/s", "run_root": "/r", **kwargs})


def test_buildah_argv_always_names_storage() -> None:
    config = BuilderConfig(storage_root="/s", run_root="/r")
    assert config.buildah_argv("images") == [
        "buildah", "--root", "/s", "--runroot", "/r", "--storage-driver", "vfs", "images",
    ]  # fmt: skip
    assert "secret" not in repr(
        BuilderConfig("/s", "/r", registry_username="u", registry_password="secret")
    )


@pytest.mark.parametrize(
    ("name", "oci"),
    [
        ("x86_64", "amd64"),
        ("amd64", "amd64"),
        ("aarch64", "arm64"),
        ("ARM64", "arm64"),
        (" armhf ", "arm"),
        ("i686", "386"),
        ("ppc64el", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("loongarch64", "loong64"),
        ("noarch", None),
    ],
)
def test_oci_architecture(name: str, oci: str | None) -> None:
    assert oci_architecture(name) == oci


@pytest.mark.parametrize("name", ["", "sparc", "x86-64", "arm64; rm -rf /", "arm64\0"])
def test_unknown_architecture_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        oci_architecture(name)


def test_bad_inputs_fail_before_running_anything(
    buildah_config: BuilderConfig, tmp_path: Path
) -> None:
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"")
    common = {"config": buildah_config, "log": print}
    with pytest.raises(ValueError, match="tarball not found"):
        image_from_rootfs(
            str(tmp_path / "none.tar"), tag="a/b:1", env={}, cmd=[], labels={}, **common
        )
    with pytest.raises(ValueError, match="invalid image tag"):
        image_from_rootfs(str(tar), tag="Bad Tag", env={}, cmd=[], labels={}, **common)
    with pytest.raises(ValueError, match="invalid environment variable name"):
        image_from_rootfs(str(tar), tag="a/b:1", env={"A-B": "1"}, cmd=[], labels={}, **common)
    with pytest.raises(ValueError, match="exec form"):
        image_from_rootfs(str(tar), tag="a/b:1", env={}, cmd="bash", labels={}, **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid label key"):
        image_from_rootfs(str(tar), tag="a/b:1", env={}, cmd=[], labels={"": "x"}, **common)
    with pytest.raises(ValueError, match="invalid architecture 'aarch64'"):  # an OCI name only
        image_from_rootfs(
            str(tar), tag="a/b:1", env={}, cmd=[], labels={}, arch="aarch64", **common
        )
    with pytest.raises(ValueError, match="Dockerfile is empty"):
        build_dockerfile(
            " \n", context_dir=str(tmp_path), tag="a/b:1", labels={}, build_args={}, **common
        )
    with pytest.raises(ValueError, match="build context directory does not exist"):
        build_dockerfile(
            "FROM scratch\n",
            context_dir=str(tmp_path / "no"),
            tag="a/b:1",
            labels={},
            build_args={},
            **common,
        )
    with pytest.raises(ValueError, match="invalid push destination"):
        push_image("a/b:1", "https://host/repo", **common)
    with pytest.raises(ValueError, match="output directory does not exist"):
        bootstrap_rootfs(BootstrapSpec(), str(tmp_path / "no" / "x.tar"), **common)


# --- real tools ----------------------------------------------------------------------------


@pytest.mark.slow
def test_bootstrapped_base_image_in_registry(
    debian_base_image: tuple[str, str], oci_registry: LocalRegistry
) -> None:
    oci_registry.start()
    reference, digest = debian_base_image
    inspected = skopeo(reference)
    assert inspected["Digest"] == digest
    assert inspected["Architecture"] == "amd64"
    env = dict(item.split("=", 1) for item in inspected["Env"])
    assert {k: env[k] for k in RUNTIME_ENV} == dict(RUNTIME_ENV)
    assert inspected["Labels"]["org.opencontainers.image.title"] == "runtime/debian"
    assert len(inspected["Labels"]["io.baseimage.portal.recipe-sha256"]) == 64
    config = skopeo(reference, "--config")
    assert config["config"]["Cmd"] == ["/bin/bash"]
    info = RegistryClient(oci_registry.url).manifest_info("runtime/debian", "12")
    assert info.digest == digest


@pytest.mark.slow
def test_dockerfile_build_on_base_image_is_pushed(
    debian_base_image: tuple[str, str],
    oci_registry: LocalRegistry,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    oci_registry.start()
    _, base_digest = debian_base_image
    (tmp_path / "greeting.txt").write_text("hello from the context\n")
    dockerfile = (
        f"FROM {oci_registry.host}/runtime/debian@{base_digest}\n"
        "ARG FLAVOUR=plain\n"
        "COPY greeting.txt /etc/greeting.txt\n"
        'RUN locale -a | grep -qx en_US.utf8 && echo "flavour=$FLAVOUR" > /etc/flavour\n'
    )
    lines: list[str] = []
    labels = oci_labels(
        title="build/demo",
        version="1",
        source_request="req-1",
        recipe_text=dockerfile,
        created=CREATED,
    )
    result = build_dockerfile(
        dockerfile,
        context_dir=str(tmp_path),
        tag="localhost/build/demo:1",
        labels=labels,
        build_args={"FLAVOUR": "spicy"},
        config=buildah_config,
        log=lines.append,
    )
    assert result.image_id
    steps = [line for line in lines if line.startswith("STEP ")]
    # buildah turns each --label into a step of its own after the Dockerfile's steps.
    assert steps[0].startswith(f"STEP 1/{len(steps)}: FROM ")
    assert steps[3].startswith(f"STEP 4/{len(steps)}: RUN locale -a")
    destination = f"{oci_registry.host}/build/demo:1"
    digest = push_image(
        "localhost/build/demo:1", destination, config=buildah_config, log=lines.append
    )
    inspected = skopeo(destination)
    assert inspected["Digest"] == digest
    assert inspected["Labels"]["io.baseimage.portal.request"] == "req-1"
    assert inspected["Labels"]["org.opencontainers.image.created"] == "2025-05-20T08:30:00Z"
    assert len(inspected["Layers"]) == 2  # the base layer + one squashed build layer
    info = RegistryClient(oci_registry.url).manifest_info("build/demo", "1")
    assert info.digest == digest
    assert info.architecture == "amd64"
    # What the RUN step wrote, read back from the built image.
    mounted = subprocess.run(
        [*buildah_config.buildah_argv("from", "--name", "bip-check", "localhost/build/demo:1")],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert mounted.returncode == 0
    try:
        out = subprocess.run(
            [
                *buildah_config.buildah_argv(
                    "run",
                    "--isolation",
                    "chroot",
                    "bip-check",
                    "cat",
                    "/etc/flavour",
                    "/etc/greeting.txt",
                )
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert out.stdout.decode() == "flavour=spicy\nhello from the context\n"
    finally:
        subprocess.run(
            [*buildah_config.buildah_argv("rm", "bip-check")], capture_output=True, timeout=120
        )
    assert remove_image("localhost/build/demo:1", buildah_config) is True
    assert remove_image("localhost/build/demo:1", buildah_config) is False


@pytest.mark.slow
def test_failing_run_names_step_and_exit_code(
    debian_base_image: tuple[str, str],
    oci_registry: LocalRegistry,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    oci_registry.start()
    dockerfile = (
        f"FROM {oci_registry.host}/runtime/debian@{debian_base_image[1]}\n"
        "RUN echo before\n"
        "RUN echo about to fail && exit 3\n"
        "RUN echo never\n"
    )
    lines: list[str] = []
    with pytest.raises(BuildError) as caught:
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/build/broken:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lines.append,
        )
    error = caught.value
    assert type(error) is BuildError
    assert "STEP 3/4: RUN echo about to fail && exit 3" in error.message
    assert "exit code 3" in error.message
    assert error.returncode == 3
    assert error.step == "STEP 3/4: RUN echo about to fail && exit 3"
    assert "about to fail" in error.output_tail
    assert "never" not in "\n".join(lines)


@pytest.mark.slow
def test_cancel_kills_the_build(
    debian_base_image: tuple[str, str],
    oci_registry: LocalRegistry,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    oci_registry.start()
    marker = "sleep 3171"
    dockerfile = (
        f"FROM {oci_registry.host}/runtime/debian@{debian_base_image[1]}\nRUN echo go && {marker}\n"
    )
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(BuildCancelled, match="cancelled") as caught:
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/build/cancelled:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lines.append,
            should_cancel=lambda: "go" in lines,
        )
    assert time.monotonic() - started < 120
    assert "STEP 2/2" in caught.value.step
    assert processes_matching(marker) == []


@pytest.mark.slow
def test_timeout_kills_the_build(
    debian_base_image: tuple[str, str],
    oci_registry: LocalRegistry,
    buildah_config: BuilderConfig,
    tmp_path: Path,
) -> None:
    oci_registry.start()
    marker = "sleep 3172"
    config = BuilderConfig(
        storage_root=buildah_config.storage_root,
        run_root=buildah_config.run_root,
        tls_verify=False,
        timeout=8,
    )
    dockerfile = f"FROM {oci_registry.host}/runtime/debian@{debian_base_image[1]}\nRUN {marker}\n"
    with pytest.raises(BuildTimeout, match="timed out after 8 s"):
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/build/slow:1",
            labels={},
            build_args={},
            config=config,
            log=lambda _: None,
        )
    assert processes_matching(marker) == []


@pytest.mark.slow
def test_push_to_stopped_registry_is_unavailable(
    debian_base_image: tuple[str, str], oci_registry: LocalRegistry, buildah_config: BuilderConfig
) -> None:
    destination = f"{oci_registry.host}/runtime/debian:down"
    with oci_registry.down(), pytest.raises(PushUnavailable, match="registry unavailable"):
        push_image(
            "localhost/runtime/debian:12", destination, config=buildah_config, log=lambda _: None
        )


@pytest.mark.slow
def test_push_of_unknown_image_is_a_plain_build_error(
    oci_registry: LocalRegistry, buildah_config: BuilderConfig
) -> None:
    oci_registry.start()
    with pytest.raises(BuildError, match=r"buildah push .* failed \(exit code \d+\)") as caught:
        push_image(
            "localhost/no/such:1",
            f"{oci_registry.host}/no/such:1",
            config=buildah_config,
            log=lambda _: None,
        )
    assert not isinstance(caught.value, PushUnavailable)


@pytest.mark.slow
def test_bootstrap_cancel_leaves_nothing_behind(
    buildah_config: BuilderConfig, tmp_path: Path
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(BuildCancelled, match="mmdebstrap bookworm"):
        bootstrap_rootfs(
            BootstrapSpec(),
            str(tmp_path / "rootfs.tar"),
            config=buildah_config,
            log=lines.append,
            should_cancel=lambda: time.monotonic() - started > 3,
        )
    assert lines  # mmdebstrap's progress was streamed
    assert list(tmp_path.iterdir()) == []
    assert processes_matching(str(tmp_path)) == []  # mmdebstrap and its children are gone


@pytest.mark.slow
def test_image_from_rootfs_removes_working_container_on_failure(
    buildah_config: BuilderConfig, tmp_path: Path
) -> None:
    bad = tmp_path / "rootfs.tar"
    bad.write_bytes(b"this is not a tar file")

    def containers() -> str:
        return subprocess.run(
            [*buildah_config.buildah_argv("containers", "--quiet")],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()

    before = containers()
    # buildah add copies a non-archive as a plain file, so break the step after it instead.
    with pytest.raises(BuildError, match="buildah commit failed"):
        image_from_rootfs(
            str(bad),
            tag="localhost/x/y:1:2",
            env={},
            cmd=[],
            labels={},
            config=buildah_config,
            log=lambda _: None,
        )
    assert containers() == before


def test_concurrent_logs_stay_in_caller_thread(buildah_config: BuilderConfig) -> None:
    seen: set[int] = set()
    remove_image(
        "localhost/none/none:1", buildah_config, log=lambda _: seen.add(threading.get_ident())
    )
    assert seen <= {threading.get_ident()}


@pytest.mark.slow
def test_build_with_base_registry_down_is_pull_unavailable(
    oci_registry: LocalRegistry, buildah_config: BuilderConfig, tmp_path: Path
) -> None:
    dockerfile = f"FROM {oci_registry.host}/runtime/debian@sha256:{'1' * 64}\nRUN true\n"
    with oci_registry.down(), pytest.raises(PullUnavailable, match="registry unavailable"):
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/build/nobase:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lambda _: None,
        )


@pytest.mark.slow
def test_build_with_unknown_base_is_a_plain_build_error(
    oci_registry: LocalRegistry, buildah_config: BuilderConfig, tmp_path: Path
) -> None:
    oci_registry.start()
    dockerfile = f"FROM {oci_registry.host}/runtime/nothing:1\nRUN true\n"
    # Bases are pulled (with the credentials) before the sandboxed `buildah bud` runs.
    with pytest.raises(BuildError, match="buildah pull") as caught:
        build_dockerfile(
            dockerfile,
            context_dir=str(tmp_path),
            tag="localhost/build/nobase:1",
            labels={},
            build_args={},
            config=buildah_config,
            log=lambda _: None,
        )
    assert type(caught.value) is BuildError
    assert "runtime/nothing" in caught.value.message
