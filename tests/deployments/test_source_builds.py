"""Compile in a build image, for real: a C program in a tar.gz built by gcc in `build/gcc:12`
(buildah, offline), registered with its ELF facts and SLSA provenance, then run on
`runtime/debian:12`. Failing commands and outputs that reach outside register nothing."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from deployments.models import BinaryVersion, Service, SourceBuild
from images.builder.container import Mount, container_run, working_container
from images.models import ImageVersion
from portal.jobs import job_execute
from portal.models import Job
from tests.deployments import build_support

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
build_env = build_support.build_env  # the fixture

URL = "/api/v1/services/orders/builds/"
HELLO_C = b"""#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello from build/gcc:12, %d args\\n", argc - 1);
    return 0;
}
"""


def targz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def dev(token_client, service_team):
    return token_client(service_team, ["binaries:read", "binaries:write"])


def start(client, image: ImageVersion, archive: bytes, command, output_path="hello", **extra):
    data = {
        "build_image_version": str(image.pk),
        "command": json.dumps(command) if isinstance(command, list) else command,
        "output_path": output_path,
        "version": extra.pop("version", "1.0.0"),
        "arch": extra.pop("arch", "x86_64"),
        "archive": io.BytesIO(archive),
    }
    data["archive"].name = "hello-src.tar.gz"
    return client.post(URL, data, format="multipart")


def run_job(response) -> tuple[Job, SourceBuild]:
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]["id"]
    job_execute(job_id)
    job = Job.objects.get(pk=job_id)
    return job, SourceBuild.objects.get(pk=response.json()["build"]["id"])


def containers(config) -> str:
    import subprocess

    return subprocess.run(
        config.buildah_argv("containers", "--format", "{{.ContainerName}}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_compile_in_build_gcc_then_run_on_runtime_debian(build_env, dev, orders, tmp_path):
    port = build_env["oci"].port
    # The command first proves it has no network: the registry listens on the worker's
    # loopback, and the build must not reach it.
    script = (
        f"if (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo NETWORK; exit 9; fi; "
        "mkdir -p /out/bin && gcc -O2 -o /out/bin/hello hello.c"
    )
    archive = targz({"hello.c": HELLO_C})
    response = start(dev, build_env["gcc"], archive, ["bash", "-c", script], "bin/hello")
    job, build = run_job(response)
    assert job.state == "succeeded", job.error + job.log[-3000:]
    assert job.queue == "builds"
    assert build.state == "succeeded"
    binary = BinaryVersion.objects.get()
    assert build.binary_version == binary
    assert job.result["binary_version"] == binary.pk
    assert (binary.service, binary.version, binary.arch, binary.filename) == (
        orders,
        "1.0.0",
        "x86_64",
        "hello",
    )
    assert binary.built_in == build_env["gcc"]
    assert (binary.file_type, binary.linkage, binary.libc) == ("elf", "dynamic", "glibc")
    assert binary.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert "libc.so.6" in binary.needed
    assert binary.file == f"binaries/sha256/{binary.sha256[:2]}/{binary.sha256}"
    assert binary.build_url.endswith(f"/api/v1/services/orders/builds/{build.pk}/")
    stored = binary_stored(build_env, binary)
    import hashlib

    assert hashlib.sha256(stored).hexdigest() == binary.sha256
    assert stored[:4] == b"\x7fELF"

    # SLSA v1 provenance, subject = the binary
    statement = build.provenance
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "hello", "digest": {"sha256": binary.sha256}}]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["command"] == ["bash", "-c", script]
    assert definition["externalParameters"]["output_path"] == "bin/hello"
    assert definition["externalParameters"]["source_sha256"] == hashlib.sha256(archive).hexdigest()
    dependencies = definition["resolvedDependencies"]
    gcc_digest = build_env["gcc"].digest
    assert dependencies[0]["uri"] == f"oci://{build_env['gcc'].pull_ref}"
    assert dependencies[0]["digest"] == {"sha256": gcc_digest.removeprefix("sha256:")}
    assert dependencies[1]["digest"] == {"sha256": build.source_sha256}
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"]
    assert run["metadata"]["invocationId"] == str(job.pk)
    assert run["metadata"]["startedOn"] <= run["metadata"]["finishedOn"]
    assert run["metadata"]["finishedOn"].endswith("Z")
    detail = dev.get(f"{URL}{build.pk}/").json()
    assert detail["provenance"] == statement
    assert detail["binary_version"] == binary.pk

    # the working container is gone
    assert "bip-run-" not in containers(build_env["buildah"])

    # the binary runs on runtime/debian:12
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello").write_bytes(stored)
    (app / "hello").chmod(0o755)
    lines: list[str] = []
    config = build_env["buildah"]
    with working_container(
        build_env["runtime"].pull_ref, config=config, log=lines.append
    ) as container:
        result = container_run(
            container,
            ["/opt/app/hello", "a", "b"],
            mounts=[Mount(str(app), "/opt/app", read_only=True)],
            workdir="/",
            config=config,
            log=lines.append,
        )
    assert "hello from build/gcc:12, 2 args" in result.output_tail, lines

    # the same inputs again: the same build, no second job
    jobs_before = Job.objects.count()
    again = start(dev, build_env["gcc"], archive, ["bash", "-c", script], "bin/hello")
    assert again.status_code == 200, again.json()
    assert again.json()["cached"] is True
    assert again.json()["build"]["id"] == build.pk
    assert again.json()["build"]["state"] == "succeeded"
    assert Job.objects.count() == jobs_before
    assert BinaryVersion.objects.count() == 1


def binary_stored(build_env, binary: BinaryVersion) -> bytes:
    from deployments.storage import binary_storage

    with binary_storage().open(binary.file, "rb") as handle:
        return handle.read()


def test_a_failing_command_fails_the_job_and_registers_nothing(build_env, dev, orders):
    archive = targz({"broken.c": b"int main(void) { return syntax error }\n"})
    response = start(
        dev,
        build_env["gcc"],
        archive,
        "echo compiling-marker; gcc -o /out/hello broken.c",
    )
    job, build = run_job(response)
    assert job.state == "failed"
    assert "The build command failed (exit code 1)" in job.error
    assert "nothing was registered" in job.error
    assert "error" in job.error and "broken.c" in job.error  # gcc's own words, the tail
    assert build.state == "failed"
    assert "The build command failed" in build.error
    assert build.binary_version is None and build.provenance == {}
    assert BinaryVersion.objects.count() == 0
    assert "bip-run-" not in containers(build_env["buildah"])


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("ln -s /etc/passwd /out/hello", "is a symbolic link"),
        ("mkdir /out/d && ln -s /etc /out/d/link && true", "left no /out/hello"),
        ("true", "left no /out/hello"),
        ("mkdir /out/hello", "not a regular file"),
    ],
    ids=["symlink-to-worker-file", "nothing-there", "no-output", "a-directory"],
)
def test_outputs_that_are_not_a_regular_file_register_nothing(
    build_env, dev, orders, script, words
):
    response = start(dev, build_env["gcc"], targz({"x.c": b"int main(){}\n"}), script)
    job, build = run_job(response)
    assert job.state == "failed", job.log[-2000:]
    assert words in job.error
    assert build.state == "failed"
    assert BinaryVersion.objects.count() == 0


def test_an_output_of_another_arch_is_refused_by_the_upload_checks(build_env, dev, orders):
    response = start(
        dev,
        build_env["gcc"],
        targz({"hello.c": HELLO_C}),
        "gcc -o /out/hello hello.c",
        arch="aarch64",
    )
    job, build = run_job(response)
    assert job.state == "failed"
    assert "cannot be registered" in job.error and "x86_64 ELF" in job.error
    assert BinaryVersion.objects.count() == 0


def test_the_source_is_read_only(build_env, dev, orders):
    response = start(
        dev,
        build_env["gcc"],
        targz({"hello.c": HELLO_C}),
        "gcc -o hello hello.c",  # writes into /src
    )
    job, _ = run_job(response)
    assert job.state == "failed"
    assert "Read-only file system" in job.error or "read-only" in job.error.lower()


def test_a_tampered_stored_archive_is_refused(build_env, dev, orders, binary_store_dir):
    response = start(dev, build_env["gcc"], targz({"hello.c": HELLO_C}), "true")
    build = SourceBuild.objects.get(pk=response.json()["build"]["id"])
    path = Path(binary_store_dir["root"]) / build.source_file
    path.write_bytes(targz({"../evil": b"x"}))
    job, build = run_job(response)
    assert job.state == "failed"
    assert "storage is corrupt" in job.error
    assert BinaryVersion.objects.count() == 0


def test_the_job_refuses_a_traversal_archive_that_got_into_storage(
    build_env, orders, binary_store_dir
):
    """The start refuses such archives; the job checks again before it unpacks anything."""
    import hashlib

    from deployments.services.source_builds import _start_job, source_storage_name
    from portal.actors import Actor

    evil = targz({"ok.c": b"x", "../../escaped": b"x"})
    sha = hashlib.sha256(evil).hexdigest()
    path = Path(binary_store_dir["root"]) / source_storage_name(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(evil)
    build = SourceBuild.objects.create(
        service=orders,
        build_version=build_env["gcc"],
        version="6.6.6",
        arch="x86_64",
        source_name="evil.tar.gz",
        source_sha256=sha,
        source_size=len(evil),
        source_file=source_storage_name(sha),
        command=["true"],
        output_path="hello",
        cache_key="e" * 64,
    )
    job = _start_job(build, Actor.system_actor("test"))
    job_execute(job.pk)
    job.refresh_from_db()
    build.refresh_from_db()
    assert job.state == "failed"
    assert "contains '..'" in job.error and "Nothing was kept" in job.error
    assert build.state == "failed"
    work = Path(build_env["buildah"].storage_root).parent
    assert not list(Path(work).rglob("escaped"))
    assert not (Path(binary_store_dir["root"]).parent / "escaped").exists()


def test_an_output_path_through_a_symlinked_directory_is_refused(build_env, dev, orders):
    response = start(
        dev,
        build_env["gcc"],
        targz({"x.c": b"int main(){}\n"}),
        "ln -s /etc /out/d",
        output_path="d/passwd",
    )
    job, build = run_job(response)
    assert job.state == "failed"
    assert "d is a symbolic link" in job.error
    assert BinaryVersion.objects.count() == 0
