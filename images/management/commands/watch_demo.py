"""`manage.py watch_demo`: print a console line as each demo image is ready (`make run`)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from images.demo_progress import demo_progress_compute


class Command(BaseCommand):
    help = "Print one line per demo image when it is ready (or its build failed); exit after."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        told: set[str] = set()
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            progress = demo_progress_compute()
            for item in progress:
                if item.reference in told:
                    continue
                if item.ready:
                    told.add(item.reference)
                    self.stdout.write(f"  Demo image ready: {item.reference}  ({item.pull_ref})")
                elif item.state in ("failed", "cancelled"):
                    told.add(item.reference)
                    self.stdout.write(
                        f"  Demo image {item.reference}: build {item.state} "
                        f"(job #{item.job_id}, see the Jobs page)"
                    )
            if not progress or len(told) == len(progress):
                return
            time.sleep(options["interval"])
