"""The portal's own Containerfile, built with buildah on a bootstrapped Debian 12 base.

The base is the session's cached bookworm minbase rootfs (tests/fixtures/registry.py), turned
into a local image the way the portal makes every bootstrapped base: nothing is pulled from a
hub. The `worker` target is built (which builds `web` on the way), then `web` from the layer
cache; the web image runs as uid 10001 with the static files collected and answers /healthz
from gunicorn inside the container; the worker image carries buildah, skopeo, mmdebstrap,
syft and hadolint.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.support import free_port
from images.builder import RUNTIME_ENV, BuilderConfig, image_from_rootfs
from tests.fixtures.registry import BASE_SPEC, cached_rootfs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/portal-containerfile/debian:12"
WEB = "localhost/portal-containerfile/web:test"
WORKER = "localhost/portal-containerfile/worker:test"
BUILD_TIMEOUT = 2400
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def buildah(config: BuilderConfig, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argument list
        config.buildah_argv(*args), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"buildah {args[:3]}: {result.stdout[-4000:]}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def images(buildah_config: BuilderConfig) -> dict[str, str]:
    tar = cached_rootfs(BASE_SPEC, buildah_config)
    image_from_rootfs(
        str(tar),
        tag=BASE,
        env=RUNTIME_ENV,
        cmd=["/bin/bash"],
        labels={},
        config=buildah_config,
        log=lambda _line: None,
    )
    # pip and npm inside the build trust what this machine trusts (an egress proxy's CA).
    trust: list[str] = []
    if HOST_CA.is_file():
        trust = ["--volume", f"{HOST_CA}:/run/build-ca.crt:ro"]
        for arg in ("PIP_CERT", "NODE_EXTRA_CA_CERTS"):
            trust += ["--build-arg", f"{arg}=/run/build-ca.crt"]
    for target, tag in (("worker", WORKER), ("web", WEB)):
        buildah(
            buildah_config,
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            *trust,
            "--build-arg",
            f"BASE={BASE}",
            "--target",
            target,
            "--tag",
            tag,
            "--file",
            str(ROOT / "Containerfile"),
            str(ROOT),
            timeout=BUILD_TIMEOUT,
        )
    return {"web": WEB, "worker": WORKER}


@pytest.fixture
def container(buildah_config: BuilderConfig, images: dict[str, str]) -> Iterator[object]:
    made: list[str] = []

    def make(kind: str) -> str:
        name = buildah(buildah_config, "from", images[kind]).strip().splitlines()[-1]
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(  # noqa: S603
            buildah_config.buildah_argv("rm", name), capture_output=True, timeout=120, check=False
        )


def run_in(config: BuilderConfig, name: str, *argv: str, env: dict[str, str] | None = None) -> str:
    flags: list[str] = ["--isolation", "chroot"]
    for key, value in (env or {}).items():
        flags += ["--env", f"{key}={value}"]
    return buildah(config, "run", *flags, name, "--", *argv)


def test_web_image_runs_gunicorn_as_the_portal_user(
    buildah_config: BuilderConfig, images: dict[str, str], container: object
) -> None:
    (info,) = [json.loads(buildah(buildah_config, "inspect", "--type", "image", images["web"]))]
    assert info["OCIv1"]["config"]["User"] == "10001:10001"
    assert info["OCIv1"]["config"]["Cmd"][0] == "gunicorn"
    name = container("web")  # type: ignore[operator]
    assert run_in(buildah_config, name, "id", "-u").strip() == "10001"
    # collectstatic ran at build time (the manifest whitenoise serves hashed names from).
    manifest = json.loads(run_in(buildah_config, name, "cat", "/app/staticfiles/staticfiles.json"))
    hashed = manifest["paths"]["vendor/htmx/htmx.min.js"]
    port = free_port()
    env = {
        "SECRET_KEY": "containerfile-test-" + "x" * 40,
        "DATABASE_URL": "sqlite:////var/lib/portal/test.sqlite3",
        "ALLOWED_HOSTS": "localhost",
        "PORTAL_BEHIND_PROXY": "1",  # as in deploy/kubernetes/config.yaml
    }
    argv = ["run", "--isolation", "chroot"]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    argv += [name, "--", "gunicorn", "portal.wsgi", f"--bind=127.0.0.1:{port}", "--workers=1"]
    server = subprocess.Popen(  # noqa: S603
        buildah_config.buildah_argv(*argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        response = None
        while time.monotonic() < deadline:
            try:
                response = requests.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}, timeout=15
                )
                break
            # Refused while gunicorn starts; a read timeout while its worker still imports
            # Django on a loaded machine (the first try took more than 5 s there).
            except (requests.ConnectionError, requests.Timeout):
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                time.sleep(0.5)
        assert response is not None and response.status_code == 200, "gunicorn never answered"
        assert response.json() == {"status": "ok"}
        static = requests.get(
            f"http://127.0.0.1:{port}/static/{hashed}",
            headers={"Host": "localhost", "X-Forwarded-Proto": "https"},
            timeout=5,
        )
        assert static.status_code == 200  # whitenoise, from the files collected at build time
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def test_worker_image_has_the_workers_tools(
    buildah_config: BuilderConfig, container: object
) -> None:
    name = container("worker")  # type: ignore[operator]
    for argv, expected in (
        (["buildah", "--version"], "buildah version"),
        (["skopeo", "--version"], "skopeo version"),
        (["mmdebstrap", "--version"], "mmdebstrap"),
        (["syft", "version"], "Version:"),
        (["hadolint", "--version"], "Haskell Dockerfile Linter"),
        (["celery", "--version"], "."),
    ):
        assert expected in run_in(buildah_config, name, *argv), argv
