"""Writes of services: register one for a team."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext, pgettext

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.models import Team
from portal.teams import require_team_role

from ..choices import DeploymentMode
from ..models import Service
from ._common import refuse_reserved


def service_create(
    *,
    actor: Actor,
    name: str,
    team: Team,
    language: str = "other",
    repo_url: str = "",
    default_mode: str = DeploymentMode.VOLUME,
    description: str = "",
) -> Service:
    """Register a service of `team` (maintainers and above)."""
    require_team_role(
        actor=actor,
        team=team,
        minimum=Role.MAINTAINER,
        what=pgettext("may …", "create its services"),
    )
    refuse_reserved(name, "services")
    if Service.objects.filter(name=name).exists():
        raise Conflict(
            gettext("A service named %(name)r already exists.") % {"name": name}, code="duplicate"
        )
    service = Service(
        name=name,
        team=team,
        language=language,
        repo_url=repo_url,
        default_mode=default_mode,
        description=description,
    )
    service.full_clean()
    with transaction.atomic():
        service.save()
        audit_record(
            actor=actor,
            action="service.create",
            obj=service,
            after={"name": name, "team": team.name, "language": language, "mode": default_mode},
        )
    return service
