"""`manage.py start_demo_jobs`: the jobs `make run` starts on each start (visible on Jobs)."""

from typing import Any

from django.core.management.base import BaseCommand

from images.demo import demo_builds_start
from portal.actors import Actor
from portal.jobs import job_create


class Command(BaseCommand):
    help = (
        "Bootstrap the demo images (runtime/debian:12, build/gcc:12, build/golang-debian:1.19) "
        "into the local registry when they have no version yet, and start a registry sync."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system_actor("make run")
        for reference, job, what in demo_builds_start(actor):
            suffix = f" (job #{job.pk})" if job is not None else ""
            self.stdout.write(f"Demo image {reference}: {what}{suffix}.")
        job, created = job_create(
            kind="images.registry_sync", actor=actor, idempotency_key="images.registry_sync"
        )
        state = "started" if created else "already running"
        self.stdout.write(f"Registry sync job #{job.pk} {state}.")
