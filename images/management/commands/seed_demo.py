"""`manage.py seed_demo`: load the demo catalog, teams and users (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from images.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = (
        "Load the demo catalog, the platform and payments teams and their users (a platform "
        "admin; a maintainer and a developer of payments)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        created = seed_demo()
        self.stdout.write(
            f"Demo data: {created['images']} new images, {created['teams']} new teams, "
            f"{created['users']} new users. Logins: platform-admin / payments-lead / payments-dev, "
            f"password {DEMO_PASSWORD}"
        )
