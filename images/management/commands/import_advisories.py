"""`manage.py import_advisories <path> [--wait]`: import OSV records from a server path."""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from images.services.advisories import advisory_import_start
from portal.actors import Actor
from portal.choices import JobState
from portal.jobs import job_execute
from portal.models import Job


class Command(BaseCommand):
    help = (
        "Import OSV advisories from a JSON file, a directory of them or an OSV zip "
        "(<ecosystem>/all.zip). The path must lie inside PORTAL_ADVISORY_IMPORT_ROOTS. "
        "Queues an import job; with --wait, runs it here and prints the summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A file, directory or zip inside the import roots.")
        parser.add_argument(
            "--wait", action="store_true", help="Run the import now and print its summary."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system_actor("import_advisories")
        try:
            job = advisory_import_start(actor=actor, path=os.path.abspath(options["path"]))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not options["wait"]:
            self.stdout.write(f"Advisory import queued: job #{job.pk}.")
            return
        # Run it in this process; if a worker claimed it first, wait for that worker.
        if job_execute(job.pk) == "skipped":
            while Job.objects.filter(pk=job.pk, state__in=JobState.live()).exists():
                time.sleep(0.5)
        job.refresh_from_db()
        if job.state != JobState.SUCCEEDED:
            raise CommandError(f"Advisory import job #{job.pk} {job.state}: {job.error}")
        result = job.result or {}
        self.stdout.write(
            f"Advisory import job #{job.pk}: imported {result.get('imported', 0)}, "
            f"unchanged {result.get('unchanged', 0)}, rejected {result.get('rejected', 0)}, "
            f"quarantined {result.get('quarantined', 0)}."
        )
        for error in result.get("errors", []):
            self.stdout.write(f"  {error['record']}: {error['reason']}")
