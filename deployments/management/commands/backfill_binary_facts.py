"""`manage.py backfill_binary_facts`: read the new ELF facts of versions uploaded before them."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.actors import Actor
from portal.jobs import job_create

from ...services import BACKFILL_FACTS_JOB_KIND, binary_facts_backfill


class Command(BaseCommand):
    help = (
        "Re-read the ELF facts (version needs, runpath, ELF class) of every binary version "
        "whose facts_version is older than the current reader, from the stored files. Runs "
        "in this process; --job starts the deployments.backfill_binary_facts job instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument("--limit", type=int, default=None)
        parser.add_argument("--job", action="store_true", help="Queue it as a job.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["job"]:
            job, created = job_create(
                kind=BACKFILL_FACTS_JOB_KIND,
                actor=Actor.system_actor("manage.py backfill_binary_facts"),
                params={"batch_size": options["batch_size"], "limit": options["limit"]},
                idempotency_key="binary-facts-backfill",
            )
            self.stdout.write(f"Job #{job.pk} {'queued' if created else 'already queued'}.")
            return
        result = binary_facts_backfill(
            batch_size=options["batch_size"], limit=options["limit"], log=self.stdout.write
        )
        self.stdout.write(f"{result['updated']} updated, {result['skipped']} skipped.")
