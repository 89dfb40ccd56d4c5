"""`manage.py create_token --user NAME [--team T] --scopes a,b --name N [--expires-days D]`."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.actors import Actor
from portal.auth import token_create
from portal.models import Team


class Command(BaseCommand):
    help = (
        "Create an API token of a person and print its secret once (for scripted set-up). "
        "The token acts for --user: never above their current role in the team."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user", help="the person the token acts for (required: a token means its creator)"
        )
        parser.add_argument("--team", help="default: the user's team when they have exactly one")
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. images:read")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["user"]:
            raise CommandError(
                "Give --user NAME: a token acts for the person who created it, capped by their "
                "role in the team (a token with nobody behind it could bypass four eyes)."
            )
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        teams = list(Team.objects.filter(memberships__user=user).order_by("name"))
        if options["team"]:
            team = Team.objects.filter(name=options["team"]).first()
            if team is None:
                raise CommandError(f"No team named {options['team']!r}.")
        elif len(teams) == 1:
            team = teams[0]
        else:
            names = ", ".join(t.name for t in teams) or "none"
            raise CommandError(
                f"{user.get_username()} is in {len(teams)} teams ({names}); give --team."
            )
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            _, secret = token_create(
                team=team,
                name=options["name"],
                scopes=scopes,
                expires_days=options["expires_days"],
                actor=Actor(user=user),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(secret)
