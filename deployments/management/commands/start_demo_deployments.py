"""`manage.py start_demo_deployments`: the deployments half of the `make run` demo."""

from typing import Any

from django.core.management.base import BaseCommand

from deployments.demo import demo_deployments_start, seed_demo_deployments


class Command(BaseCommand):
    help = (
        "Create the demo environments (dev, prod), the payments team's services payments-api "
        "(volume mode) and ledger (image mode) with a gcc-compiled binary each, and start the "
        "job that deploys them on runtime/debian:12 once it is published (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        created = seed_demo_deployments()
        self.stdout.write(
            f"Demo deployments data: {created['environments']} new environments, "
            f"{created['services']} new services, {created['binaries']} new binaries."
        )
        for binary, job in created["scans"]:
            self.stdout.write(f"Demo scan of binary {binary}: started (job #{job.pk}).")
        job, what = demo_deployments_start()
        suffix = f" (job #{job.pk})" if job is not None else ""
        self.stdout.write(f"Demo deployments: {what}{suffix}.")
