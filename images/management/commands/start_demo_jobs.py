"""`manage.py start_demo_jobs`: the jobs `make run` starts on each start (visible on Jobs)."""

from typing import Any

from django.core.management.base import BaseCommand

from portal.actors import Actor
from portal.jobs import job_create


class Command(BaseCommand):
    help = "Start a registry sync so the catalog shows what the local registry holds."

    def handle(self, *args: Any, **options: Any) -> None:
        job, created = job_create(
            kind="images.registry_sync",
            actor=Actor.system_actor("make run"),
            idempotency_key="images.registry_sync",
        )
        state = "started" if created else "already running"
        self.stdout.write(f"Registry sync job #{job.pk} {state}.")
