"""`manage.py create_token --team T --scopes a,b --name N [--expires-days D]`."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.actors import Actor
from portal.auth import token_create
from portal.models import Team


class Command(BaseCommand):
    help = "Create an API token for a team and print its secret once (for scripted set-up)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. images:read")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        team = Team.objects.filter(name=options["team"]).first()
        if team is None:
            raise CommandError(f"No team named {options['team']!r}.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            _, secret = token_create(
                team=team,
                name=options["name"],
                scopes=scopes,
                expires_days=options["expires_days"],
                actor=Actor.system_actor("create_token"),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(secret)
