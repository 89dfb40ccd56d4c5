"""Benchmark: the portal's build job vs the same `buildah bud` + `buildah push` run by hand.

In one run, on one machine: starts Debian's docker-registry on a free port, a throwaway SQLite
database and var/ directory, records a Debian base image (bootstrapped once; the rootfs tar is
cached in /var/tmp/bip-test-cache like the tests do), pre-pulls it so neither side pays for the
pull, then for each round builds the same Dockerfile recipe (a) through the portal's build job
(`job_execute`: resolve + pin the FROM, bud, push, read the manifest back, record the version,
job log and progress in the database) and (b) by hand with the same buildah argv (same flags,
labels, storage) followed by the same push. Rounds alternate a/b; medians are compared.

Prints JSON; exits 1 when the ratio job / by-hand exceeds the target.

    .venv/bin/python bench/build_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.10
RECIPE = """\
# round {round}
FROM runtime/debian:12
ENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8
RUN for i in $(seq 1 300); do echo "build line $i"; done \\
 && head -c 16777216 /dev/urandom > /payload.bin && echo round {round} > /round.txt
"""


def _timed(call) -> float:  # noqa: ANN001 - a zero-argument callable
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bip-bench-build-"))
    os.environ["PORTAL_VAR_DIR"] = str(work / "var")
    os.environ.pop("DATABASE_URL", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["JOB_HEARTBEAT_SECONDS"] = "5"
    sys.path.insert(0, str(BASE))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from images.builder import (
        RUNTIME_ENV,
        BuilderConfig,
        bootstrap_command,
        image_from_rootfs,
        oci_labels,
        push_image,
    )
    from images.models import BaseImage, Registry
    from images.recipes import dockerfile_from_lines, pin_dockerfile
    from images.services import image_version_record
    from portal.actors import Actor
    from portal.jobs import job_create, job_execute
    from portal.models import Job, Team
    from tests.fixtures.registry import BASE_SPEC, LocalRegistry, cached_rootfs

    call_command("migrate", verbosity=0)
    registry_proc = LocalRegistry(work / "registry")
    registry_proc.start()
    try:
        config = BuilderConfig(
            storage_root=str(work / "buildah" / "storage"),
            run_root=str(work / "buildah" / "run"),
            tls_verify=False,
            timeout=1800,
        )
        settings.PORTAL_BUILDAH_ROOT = config.storage_root
        settings.PORTAL_BUILDAH_RUNROOT = config.run_root
        settings.PORTAL_BUILD_WORK_DIR = str(work / "build-tmp")
        settings.PORTAL_AUTO_PUBLISH = False
        actor = Actor.system_actor("bench")
        lines: list[str] = []
        tar = cached_rootfs(BASE_SPEC, config)
        labels = oci_labels(
            title="runtime/debian",
            version="12",
            source_request="bench",
            recipe_text=" ".join(bootstrap_command(BASE_SPEC, "OUT", config=config)),
            created=datetime.now(UTC),
        )
        image_from_rootfs(
            str(tar),
            tag="localhost/runtime/debian:12",
            env=RUNTIME_ENV,
            cmd=["/bin/bash"],
            labels=labels,
            config=config,
            log=lines.append,
        )
        digest = push_image(
            "localhost/runtime/debian:12",
            f"{registry_proc.host}/runtime/debian:12",
            config=config,
            log=lines.append,
        )
        team = Team.objects.create(name="platform", is_platform=True)
        registry = Registry.objects.create(
            name="bench", url=registry_proc.url, tls_verify=False, is_default=True
        )
        base_image = BaseImage.objects.create(
            name="runtime/debian",
            kind="runtime",
            os_family="debian",
            os_version="12",
            owner_team=team,
            registry=registry,
        )
        base, _ = image_version_record(
            actor=actor,
            image=base_image,
            registry=registry,
            tag="12",
            digest=digest,
            size=None,
            arch="amd64",
            state="approved",
        )
        target = BaseImage.objects.create(
            name="runtime/bench",
            kind="runtime",
            os_family="debian",
            os_version="12",
            owner_team=team,
            registry=registry,
        )
        pull = subprocess.run(
            config.buildah_argv("pull", "--tls-verify=false", base.pull_ref),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if pull.returncode:
            raise RuntimeError(pull.stderr)

        def portal_build(round_no: int) -> float:
            job, _ = job_create(
                kind="images.build",
                actor=actor,
                params={
                    "image_id": target.pk,
                    "tag": f"portal-{round_no}",
                    "recipe_kind": "dockerfile",
                    "recipe": RECIPE.format(round=round_no),
                },
            )
            seconds = _timed(lambda: job_execute(job.pk))
            job.refresh_from_db()
            if job.state != "succeeded":
                raise RuntimeError(f"portal build failed: {job.error}")
            return seconds

        def by_hand(round_no: int) -> tuple[float, float]:
            recipe = RECIPE.format(round=round_no)
            pins = {f.line: base.pull_ref for f in dockerfile_from_lines(recipe) if f.external}
            text = pin_dockerfile(recipe, pins)
            hand_dir = work / f"hand-{round_no}"
            (hand_dir / "context").mkdir(parents=True)
            (hand_dir / "Dockerfile").write_text(text)
            tag = f"localhost/runtime/bench:hand-{round_no}"
            labels = oci_labels(
                title="runtime/bench",
                version=f"hand-{round_no}",
                source_request="bench",
                recipe_text=recipe,
                created=datetime.now(UTC),
            )
            labels["org.opencontainers.image.base.digest"] = base.digest
            labels["org.opencontainers.image.base.name"] = base.pull_ref
            bud = config.buildah_argv(
                "bud",
                "--isolation",
                config.isolation,
                "--layers=false",
                "--tls-verify=false",
                "--iidfile",
                str(hand_dir / "iid"),
                "-f",
                str(hand_dir / "Dockerfile"),
                "-t",
                tag,
            )
            for key, value in labels.items():
                bud += ["--label", f"{key}={value}"]
            bud.append(str(hand_dir / "context"))
            push = config.buildah_argv(
                "push",
                "--tls-verify=false",
                "--retry",
                "0",
                "--digestfile",
                str(hand_dir / "digest"),
                tag,
                f"docker://{registry_proc.host}/runtime/bench:hand-{round_no}",
            )
            t_bud = _timed(
                lambda: subprocess.run(bud, capture_output=True, timeout=1800, check=True)
            )
            t_push = _timed(
                lambda: subprocess.run(push, capture_output=True, timeout=1800, check=True)
            )
            # The job removes its local image after the push (storage would grow per build);
            # the same cleanup by hand is timed too.
            t_rmi = _timed(
                lambda: subprocess.run(
                    config.buildah_argv("rmi", tag), capture_output=True, timeout=300
                )
            )
            return t_bud, t_push + t_rmi

        portal_times: list[float] = []
        bud_times: list[float] = []
        hand_times: list[float] = []
        for round_no in range(1, args.rounds + 1):
            # Alternate who goes first, so neither side always gets the warmer caches.
            if round_no % 2:
                portal_times.append(portal_build(round_no))
                t_bud, t_push = by_hand(round_no)
            else:
                t_bud, t_push = by_hand(round_no)
                portal_times.append(portal_build(round_no))
            bud_times.append(t_bud)
            hand_times.append(t_bud + t_push)
        portal = statistics.median(portal_times)
        hand = statistics.median(hand_times)
        bud_only = statistics.median(bud_times)
        ratio = portal / hand
        jobs = Job.objects.filter(kind="images.build", state="succeeded").count()
        result = {
            "benchmark": "build_overhead",
            "rounds": args.rounds,
            "recipe": "FROM runtime/debian:12 (pinned) + ENV + RUN writing 300 lines, 16 MiB",
            "portal_job_seconds": [round(t, 3) for t in portal_times],
            "by_hand_bud_push_rmi_seconds": [round(t, 3) for t in hand_times],
            "by_hand_bud_only_seconds": [round(t, 3) for t in bud_times],
            "portal_job_median_s": round(portal, 3),
            "by_hand_median_s": round(hand, 3),
            "ratio": round(ratio, 3),
            "ratio_vs_bud_only": round(portal / bud_only, 3),
            "target_ratio": TARGET_RATIO,
            "pass": ratio <= TARGET_RATIO,
            "portal_jobs_succeeded": jobs,
            "note": "the portal job also pushes, reads the manifest back and removes its local "
            "image, so the like-for-like baseline is bud + push + rmi by hand; "
            "ratio_vs_bud_only is shown for reference",
        }
        print(json.dumps(result, indent=2))
        return 0 if result["pass"] else 1
    finally:
        registry_proc.stop()
        subprocess.run(
            ["rm", "-rf", str(work)], capture_output=True, timeout=600
        )  # vfs layers are large


if __name__ == "__main__":
    sys.exit(main())
