"""`manage.py start_demo_jobs`: the jobs `make run` starts on each start (visible on Jobs)."""

from typing import Any

from django.core.management.base import BaseCommand

from images.demo import (
    demo_advisories_import,
    demo_builds_start,
    demo_request_start,
    demo_scans_start,
)
from portal.actors import Actor
from portal.jobs import job_create


class Command(BaseCommand):
    help = (
        "Import the FICTIONAL demo advisories (images/data/demo-advisories), bootstrap the demo "
        "images (runtime/debian:12, runtime/debian-11:11, build/gcc:12, build/golang-debian:1.19) "
        "into the local "
        "registry when they have no version yet, request runtime/debian:12-curl (a candidate "
        "the scan gate blocks), scan demo versions never scanned, and start a registry sync. "
        "Every build is scanned when it ends."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system_actor("make run")
        # First, so the scans of the builds below already find the demo advisories.
        job, what = demo_advisories_import(actor)
        self.stdout.write(f"Demo advisories: {what}{_job(job)}.")
        for reference, job, what in demo_builds_start(actor):
            self.stdout.write(f"Demo image {reference}: {what}{_job(job)}.")
        reference, job, what = demo_request_start()
        self.stdout.write(f"Demo request {reference}: {what}{_job(job)}.")
        for reference, job, what in demo_scans_start(actor):
            self.stdout.write(f"Demo scan of {reference}: {what}{_job(job)}.")
        job, created = job_create(
            kind="images.registry_sync", actor=actor, idempotency_key="images.registry_sync"
        )
        state = "started" if created else "already running"
        self.stdout.write(f"Registry sync job #{job.pk} {state}.")


def _job(job: Any) -> str:
    return f" (job #{job.pk})" if job is not None else ""
