"""CD's reports on a plan's releases: deployed, healthy, failed.

See the package docstring for the plan and item states."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from portal.actors import Actor
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition

from ...choices import (
    PlanItemState,
    ReleaseStatus,
)
from ...models import PlanItem, Release
from .dryrun import REPORTABLE_STATUSES
from .transitions import _plan_fail, plan_advance

# --- CD's reports ----------------------------------------------------------------------------


def release_status_report(*, release_id: int, status: str, note: str, actor: Actor) -> Release:
    """Record what CD says of a release: deployed, healthy or failed.

    A failed release takes no further report (409: roll back or release again); the same
    status may be reported again (its note and time are updated). A release made by a plan
    moves its item (healthy/failed); a failure stops the plan, a healthy report may advance it.

    Raises:
        ValidationError: a status other than deployed|healthy|failed, or a note over 500.
        Http404: no such release.
        PermissionDenied: not a developer of the service's team, nor a platform admin.
        IllegalTransition: the release was already reported failed.
    """
    if status not in REPORTABLE_STATUSES:
        raise ValidationError({"status": gettext_lazy("Report one of: deployed, healthy, failed.")})
    note = note or ""
    if len(note) > 500:
        raise ValidationError({"note": gettext_lazy("At most 500 characters.")})
    release = (
        Release.objects.select_related("deployment__service__team", "deployment__environment")
        .filter(pk=release_id)
        .first()
    )
    if release is None:
        raise Http404(gettext("No release %(release_id)s.") % {"release_id": release_id})
    team = release.deployment.service.team
    role = actor.role_in(team)
    if not actor.is_platform_admin and (role is None or not role_at_least(role, Role.DEVELOPER)):
        raise PermissionDenied(
            gettext(
                "Only team %(team)s (developer or above) or a platform admin may report the "
                "status of this release."
            )
            % {"team": team.name}
        )
    with transaction.atomic():
        before = release.status
        updated = (
            Release.objects.filter(pk=release.pk)
            .exclude(status=ReleaseStatus.FAILED)
            .update(status=status, status_note=note, status_at=timezone.now())
        )
        if not updated:
            raise IllegalTransition(
                gettext(
                    "Release %(release)s was reported failed; a failed release takes no further "
                    "report (roll back or create a new release)."
                )
                % {"release": release}
            )
        release.refresh_from_db(fields=["status", "status_note", "status_at"])
        audit_record(
            actor=actor,
            action="release.status",
            obj=release,
            before={"status": before},
            after={"status": status, "note": note},
        )
        item = PlanItem.objects.filter(release_id=release.pk).only("pk", "plan_id").first()
        if item is not None and status == ReleaseStatus.HEALTHY:
            PlanItem.objects.filter(pk=item.pk, state=PlanItemState.RELEASED).update(
                state=PlanItemState.HEALTHY, updated_at=timezone.now()
            )
        elif item is not None and status == ReleaseStatus.FAILED:
            PlanItem.objects.filter(
                pk=item.pk, state__in=[PlanItemState.RELEASED, PlanItemState.HEALTHY]
            ).update(state=PlanItemState.FAILED, error=note[:2000], updated_at=timezone.now())
            _plan_fail(
                item.plan_id,
                gettext_noop("Release %(release)s was reported failed: %(note)s")
                % {"release": release, "note": note},
            )
    if item is not None and status == ReleaseStatus.HEALTHY:
        plan_advance(plan_id=item.plan_id)
    return release
