"""The deployments half of the `make run` demo: environments, services, binaries, deployments.

The scanning demo (issue 9) needs something for a CVE's blast radius to land on: the
payments team's `payments-api` (volume mode) in `dev` and `prod` and `ledger` (image mode) in
`prod`, all on `runtime/debian:12`. Environments, services and the binaries (a small C
program compiled with gcc here) are created at once; the deployments need the approved
runtime version, which the demo bootstrap builds on first start, so a `deployments.demo`
job waits for it (visible on Jobs) and deploys when it is published. Everything is
idempotent: what exists is kept as it is.

The rebase and migration demo (issue 10) adds `invoices`, `fx-rates` and `statements` on the
end-of-life `runtime/debian-11:11` (the OS-migration wizard moves them to runtime/debian:12:
one compatible, one static, one blocked for libssl.so.1.1), and once the services on
runtime/debian:12 run, requests `runtime/debian:12-p1`, whose publish supersedes 12 (a rebase
plan with a canary wave).
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from images.choices import VersionState
from images.models import BaseImage, ImageVersion
from images.texts import _
from portal.actors import Actor
from portal.jobs import JobContext, JobFailure, job_create, job_kind
from portal.models import Team

from .choices import DeliveryStrategy, DeploymentMode, Language, PlanKind
from .models import BinaryVersion, Deployment, Environment, Plan, Service
from .services import migration_plan_create
from .uploads import HashedUploadedFile

DEMO_JOB_KIND = "deployments.demo"
DEMO_RUNTIME = ("runtime/debian", "12")
# The OS-migration demo (issue 10): services still on the EOL Debian 11 image.
DEMO_LEGACY_RUNTIME = ("runtime/debian-11", "11")
DEMO_TEAM = "payments"
DEMO_WAIT_SECONDS = 45 * 60  # the first start bootstraps three images before this one is used
_POLL_SECONDS = 5

DEMO_ENVIRONMENTS = (
    # name, namespace, delivery strategy, description
    ("dev", "payments-dev", DeliveryStrategy.HOSTPATH, "[demo] Development cluster."),
    ("prod", "payments-prod", DeliveryStrategy.INIT_FETCH, "[demo] Production cluster."),
)


@dataclass(frozen=True)
class DemoService:
    """A demo service, the version of its binary and where it runs."""

    name: str
    language: str
    mode: str
    version: str
    environments: tuple[str, ...]
    description: str
    runtime: tuple[str, str] = DEMO_RUNTIME
    # How the binary is linked: "" (dynamic, glibc), "static", or "libssl1.1" (also NEEDs
    # libssl.so.1.1, which Debian 11 has and Debian 12 does not: a real migration blocker).
    link: str = ""


DEMO_SERVICES = (
    DemoService(
        "payments-api",
        Language.C,
        DeploymentMode.VOLUME,
        "1.4.2",
        ("dev", "prod"),
        "[demo] The payments HTTP API: a C binary mounted into runtime/debian:12 (volume mode).",
    ),
    DemoService(
        "ledger",
        Language.C,
        DeploymentMode.IMAGE,
        "2.0.1",
        ("prod",),
        "[demo] The ledger writer: its binary baked into an image on runtime/debian:12.",
    ),
    # On Debian 11 (EOL): the migration to runtime/debian:12 finds one compatible, one
    # static (passes, noted) and one that needs a library Debian 12 does not ship.
    DemoService(
        "invoices",
        Language.C,
        DeploymentMode.VOLUME,
        "3.2.0",
        ("dev", "prod"),
        "[demo] Invoice rendering: a dynamic C binary still on runtime/debian-11 (EOL).",
        runtime=DEMO_LEGACY_RUNTIME,
    ),
    DemoService(
        "fx-rates",
        Language.C,
        DeploymentMode.VOLUME,
        "0.9.4",
        ("prod",),
        "[demo] Exchange rates: linked to OpenSSL 1.1 (libssl.so.1.1), on runtime/debian-11.",
        runtime=DEMO_LEGACY_RUNTIME,
        link="libssl1.1",
    ),
    DemoService(
        "statements",
        Language.C,
        DeploymentMode.VOLUME,
        "1.0.0",
        ("dev",),
        "[demo] Account statements: a static C binary on runtime/debian-11.",
        runtime=DEMO_LEGACY_RUNTIME,
        link="static",
    ),
)

_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 2 && strcmp(argv[1], "-m") == 0 ? argv[2] : "release";
    printf("%s %s (demo service of the Base Image Portal), mode %s\n", SERVICE, VERSION, mode);
    fflush(stdout);
    for (;;) pause();
}
"""


# The Debian 11 services are "built for Debian 11": this host's glibc (2.36) would make every
# binary need __libc_start_main@GLIBC_2.34, which Debian 11's glibc 2.31 lacks. On x86_64 they
# start through the symbol's GLIBC_2.2.5 version instead (their own _start, -nostartfiles), so
# they need nothing newer than GLIBC_2.2.5 and really run on bullseye.
_GLIBC_231_START = r"""
__asm__(".symver __libc_start_main_231,__libc_start_main@GLIBC_2.2.5");
__asm__(".text\n.globl _start\n.type _start,@function\n_start:\n"
        " xor %ebp,%ebp\n mov %rdx,%r9\n pop %rsi\n mov %rsp,%rdx\n and $-16,%rsp\n"
        " push %rax\n push %rsp\n xor %r8d,%r8d\n xor %ecx,%ecx\n lea main(%rip),%rdi\n"
        " call *__libc_start_main_231@GOTPCREL(%rip)\n hlt\n");
"""


def _actor() -> Actor:
    return Actor.system_actor("make run")


def demo_binary_compile(service: DemoService, out_dir: Path) -> Path | None:
    """Compile the demo program for `service` (None when gcc is missing)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    source = out_dir / f"{service.name}.c"
    binary = out_dir / service.name
    extra: list[str] = []
    legacy = (
        service.runtime == DEMO_LEGACY_RUNTIME
        and service.link != "static"
        and platform.machine() == "x86_64"
    )
    source.write_text(_PROGRAM + (_GLIBC_231_START if legacy else ""))
    if legacy:
        extra = ["-nostartfiles"]
    if service.link == "static":
        extra = ["-static"]
    elif service.link == "libssl1.1":
        # Link against a stand-in with OpenSSL 1.1's soname (this host has OpenSSL 3 only):
        # the binary NEEDs libssl.so.1.1 exactly as one built on Debian 11 would.
        stub = out_dir / "libssl.so.1.1"
        (out_dir / "ssl_stub.c").write_text("int OPENSSL_demo_stub(void) { return 0; }\n")
        _gcc(
            [gcc, "-shared", "-fPIC", "-Wl,-soname,libssl.so.1.1", "-o", str(stub)]
            + [str(out_dir / "ssl_stub.c")]
        )
        extra += ["-Wl,--no-as-needed", str(stub)]
    _gcc(
        [
            gcc,
            "-O2",
            f'-DSERVICE="{service.name}"',
            f'-DVERSION="{service.version}"',
            "-o",
            str(binary),
            str(source),
            *extra,
        ]
    )
    return binary


def _gcc(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)  # noqa: S603 - fixed list


def _upload(service: Service, spec: DemoService, path: Path, actor: Actor) -> BinaryVersion:
    from .elf import analyze_binary
    from .services import binary_version_upload

    data = path.read_bytes()
    temp_dir = settings.PORTAL_UPLOAD_TEMP_DIR
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    upload = HashedUploadedFile(spec.name, "application/octet-stream", None, temp_dir)
    try:
        upload.write(data)
        upload.flush()
        upload.seek(0)
        upload.size = len(data)
        upload.sha256 = hashlib.sha256(data).hexdigest()
        binary, _ = binary_version_upload(
            actor=actor,
            service=service,
            upload=upload,
            version=spec.version,
            arch=analyze_binary(str(path)).machine,
            sha256=upload.sha256,
            commit="0" * 40,
            build_url="https://ci.invalid/demo/" + spec.name,
        )
    finally:
        upload.close()
    return binary


def seed_demo_deployments() -> dict[str, Any]:
    """Create the demo environments, services and binary versions that are missing, and
    scan the binaries never scanned. Returns counts and the scan jobs started."""
    from .services import environment_create, service_create

    actor = _actor()
    created: dict[str, Any] = {"environments": 0, "services": 0, "binaries": 0, "scans": []}
    team = Team.objects.filter(name=DEMO_TEAM).first()
    if team is None:
        return created  # seed_demo has not run
    for name, namespace, strategy, description in DEMO_ENVIRONMENTS:
        if not Environment.objects.filter(name=name).exists():
            environment_create(
                actor=actor,
                name=name,
                namespace=namespace,
                k8s_version="1.33",
                delivery_strategy=strategy,
                description=description,
            )
            created["environments"] += 1
    with tempfile.TemporaryDirectory(prefix="demo-binaries-") as tmp:
        for spec in DEMO_SERVICES:
            service = Service.objects.filter(name=spec.name).first()
            if service is None:
                service = service_create(
                    actor=actor,
                    name=spec.name,
                    team=team,
                    language=spec.language,
                    default_mode=spec.mode,
                    description=spec.description,
                )
                created["services"] += 1
            if service.binary_versions.filter(version=spec.version).exists():
                continue
            path = demo_binary_compile(spec, Path(tmp))
            if path is not None:
                _upload(service, spec, path, actor)
                created["binaries"] += 1
    from images.choices import ScanState

    from .services import binary_version_scan_start

    for binary in BinaryVersion.objects.filter(
        service__name__in=[s.name for s in DEMO_SERVICES], scan_state=ScanState.UNSCANNED
    ):
        job = binary_version_scan_start(binary_id=binary.pk, actor=actor)
        created["scans"].append((str(binary), job))
    return created


def demo_runtime_version(runtime: tuple[str, str] = DEMO_RUNTIME) -> ImageVersion | None:
    """The approved `runtime/debian:12` (or `runtime`) the demo deploys on (None until it is
    published)."""
    name, tag = runtime
    for version in ImageVersion.objects.filter(
        base_image__name=name, state=VersionState.APPROVED
    ).order_by("-pk"):
        if version.tag == tag or tag in version.tags:
            return version
    return None


def demo_deployments_missing(
    runtime: tuple[str, str] | None = None,
) -> list[tuple[DemoService, str]]:
    """The (service, environment) pairs of the demo (on `runtime`) with no deployment yet."""
    existing = set(
        Deployment.objects.filter(service__name__in=[s.name for s in DEMO_SERVICES]).values_list(
            "service__name", "environment__name"
        )
    )
    return [
        (spec, env)
        for spec in DEMO_SERVICES
        for env in spec.environments
        if (spec.name, env) not in existing and runtime in (None, spec.runtime)
    ]


def demo_deployments_create(
    runtime: ImageVersion, which: tuple[str, str] = DEMO_RUNTIME
) -> list[str]:
    """Deploy the missing demo pairs of runtime `which` on `runtime`, with a first release.

    A release the renderer refuses is skipped with its reason (the deployment stays: the
    blast radius is about what runs where, not about manifests).
    """
    from .services import deployment_create, release_create

    actor = _actor()
    done: list[str] = []
    for spec, env in demo_deployments_missing(which):
        service = Service.objects.filter(name=spec.name).first()
        environment = Environment.objects.filter(name=env).first()
        if service is None or environment is None:
            done.append(f"{spec.name} in {env}: skipped (run seed_demo_deployments)")
            continue
        binary = service.binary_versions.filter(version=spec.version).first()
        with transaction.atomic():
            deployment = deployment_create(
                actor=actor,
                service=service,
                environment=environment,
                runtime_version=runtime,
                binary_version=binary,
                mode=spec.mode,
                env=[{"name": "TZ", "value": "Asia/Shanghai"}],
                ports=[8080],
                resources={"cpu_request": "100m", "memory_request": "64Mi"},
                replicas=2 if env == "prod" else 1,
            )
        what = f"{deployment} ({spec.mode} mode) on {runtime}"
        if binary is not None:
            try:
                release = release_create(actor=actor, deployment=deployment)
                what += f", release #{release.number}"
            except ValidationError as exc:
                what += f", no release ({'; '.join(exc.messages)})"
        done.append(what)
    return done


def demo_rebase_pending() -> bool:
    """Whether the rebase demo's second runtime/debian version is still to be published."""
    from images.demo import DEMO_REBASE_REQUEST

    return not ImageVersion.objects.filter(
        base_image__name=DEMO_REBASE_REQUEST.image,
        tag=DEMO_REBASE_REQUEST.tag,
        state__in=[VersionState.APPROVED, VersionState.SUPERSEDED],
    ).exists()


def demo_deployments_start() -> tuple[Any, str]:
    """Start the job that deploys the demo services once their runtimes are published."""
    if Team.objects.filter(name=DEMO_TEAM).first() is None:
        return None, "skipped (run seed_demo first)"
    if not demo_deployments_missing() and not demo_rebase_pending():
        return None, "already deployed"
    job, created = job_create(kind=DEMO_JOB_KIND, actor=_actor(), idempotency_key=DEMO_JOB_KIND)
    return job, "started" if created else "already running"


def demo_migration_plan_draft() -> str:
    """The OS-migration demo: a draft migration plan moving every deployment of the EOL
    runtime/debian-11 to the newest approved version of its replacement, its verdicts the
    real ones of the demo binaries against the target's scanned ABI facts. One plan only;
    "" when there is nothing to draft (no legacy deployments, no target, a plan exists)."""
    legacy = BaseImage.objects.filter(name=DEMO_LEGACY_RUNTIME[0]).first()
    if legacy is None or Plan.objects.filter(kind=PlanKind.MIGRATION).exists():
        return ""
    replacement = legacy.replacement or BaseImage.objects.filter(name=DEMO_RUNTIME[0]).first()
    target = (
        ImageVersion.objects.filter(base_image=replacement, state=VersionState.APPROVED)
        .order_by("-created_at", "-pk")
        .first()
    )
    if target is None or not Deployment.objects.filter(runtime_version__base_image=legacy):
        return ""
    try:
        plan = migration_plan_create(
            actor=_actor(), target_version_id=target.pk, base_image_id=legacy.pk
        )
    except ValidationError as exc:
        return f"migration demo: no plan ({'; '.join(exc.messages)})"
    verdicts = Counter(plan.items.values_list("verdict", flat=True))
    told = ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items()))
    return (
        f"migration demo: draft plan #{plan.pk} moves {legacy.name} to {target} ({told}); "
        f"open /plans/{plan.pk}/ to review and apply it"
    )


@job_kind(
    DEMO_JOB_KIND, max_attempts=1, timeout_seconds=DEMO_WAIT_SECONDS + 300, title="Demo deployments"
)
def demo_deployments_job(ctx: JobContext) -> dict[str, Any]:
    """Deploy the demo services as their runtimes are published, then start the rebase demo.

    Each round: publish the demo's own runtime versions that only FICTIONAL advisories block
    (`images.demo.demo_versions_publish`), deploy the services of every runtime that is
    published now (runtime/debian:12, runtime/debian-11:11), and once the services on 12 run,
    request runtime/debian:12-p1, whose publish supersedes 12 (a rebase plan). Ends when
    everything is deployed and 12-p1 is published.
    """
    from images.demo import demo_rebase_request_start, demo_versions_publish

    deadline = time.monotonic() + DEMO_WAIT_SECONDS
    done: list[str] = []
    said: set[str] = set()
    runtimes: dict[tuple[str, str], int | None] = {DEMO_RUNTIME: None, DEMO_LEGACY_RUNTIME: None}

    def say(pct: int, text: str) -> None:
        if text not in said:
            said.add(text)
            ctx.progress(pct, text)
            ctx.log(f"[portal] {text}")

    while True:
        ctx.check_cancelled()
        for line in demo_versions_publish():
            say(20, line)
        for which in runtimes:
            if not demo_deployments_missing(which):
                continue
            runtime = demo_runtime_version(which)
            if runtime is None:
                say(5, f"waiting for {which[0]}:{which[1]} to be built and published")
                continue
            runtimes[which] = runtime.pk
            lines = demo_deployments_create(runtime, which)
            for line in lines:
                ctx.log(f"[portal] {line}")
            done.extend(lines)
            say(50, f"deployed the demo services of {which[0]}:{which[1]}")
        if not demo_deployments_missing(DEMO_RUNTIME) and demo_rebase_pending():
            reference, job, what = demo_rebase_request_start()
            say(70, f"rebase demo: {reference} {what}" + (f" (job #{job.pk})" if job else ""))
        if not demo_deployments_missing() and not demo_rebase_pending():
            break
        if time.monotonic() > deadline:
            missing = sorted(
                {f"{s.runtime[0]}:{s.runtime[1]}" for s, _ in demo_deployments_missing()}
            )
            raise JobFailure(
                _(
                    "%(images)s was not published within %(minutes)s minutes; see its build "
                    "job, then run `manage.py start_demo_deployments` again.",
                    images=", ".join(missing) or "runtime/debian:12-p1",
                    minutes=DEMO_WAIT_SECONDS // 60,
                )
            )
        time.sleep(_POLL_SECONDS)
    if told := demo_migration_plan_draft():
        say(95, told)
    ctx.progress(100, f"{len(done)} demo deployments; the rebase demo's version is published")
    runtime = demo_runtime_version() or demo_runtime_version(DEMO_LEGACY_RUNTIME)
    if runtime is not None:
        ctx.set_result_object(runtime)
    return {"runtime_versions": [v for v in runtimes.values() if v], "deployments": done}
