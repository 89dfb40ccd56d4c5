"""Asking for a waiver: its scope, its VEX statement and expiry; the service-to-team resolver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from images.choices import VexJustification, VexStatus, WaiverScope, WaiverState
from images.models import Advisory, AdvisoryAlias, BaseImage, ImageVersion, Waiver
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.models import Team
from portal.templatetags.portal_i18n import status_label

OPEN_STATES = (WaiverState.REQUESTED, WaiverState.APPROVED)

ServiceTeamResolver = Callable[[str], int | None]
_service_team_resolver: ServiceTeamResolver | None = None


def waiver_service_resolver_register(resolver: ServiceTeamResolver | None) -> None:
    """Tell waivers how to turn a service name into its team id (None: no such service).

    Services live in the deployments app, a layer above; it registers its resolver when
    Django starts (`DeploymentsConfig.ready`), as the Dockerfile check's resolver is.
    """
    global _service_team_resolver
    _service_team_resolver = resolver


def waiver_max_days() -> int:
    """The longest a waiver may run (PORTAL_WAIVER_MAX_DAYS, default 180)."""
    return int(getattr(settings, "PORTAL_WAIVER_MAX_DAYS", 180))


def _service_team_id(name: str) -> int | None:
    if _service_team_resolver is None:
        raise ValidationError(
            {
                "service_name": gettext(
                    "This portal has no services installed; choose another scope."
                )
            }
        )
    return _service_team_resolver(name)


def advisory_ref_known(ref: str) -> bool:
    """Whether `ref` is an imported advisory id or an alias some advisory names."""
    return (
        Advisory.objects.filter(osv_id=ref).exists()
        or AdvisoryAlias.objects.filter(alias=ref).exists()
    )


def _may_act_for(actor: Actor, team_id: int | None) -> bool:
    """A platform admin, or a developer (or more) of `team_id`."""
    if actor.is_platform_admin:
        return True
    if team_id is None:
        return False
    team = Team.objects.filter(pk=team_id).first()
    role = actor.role_in(team)
    return role is not None and role_at_least(role, Role.DEVELOPER)


def _resolve_scope(
    *,
    scope: str,
    image_version_id: int | None,
    base_image_id: int | None,
    service_name: str,
    team_id: int | None,
) -> tuple[dict[str, Any], int | None]:
    """The waiver's target fields and the team that owns the target (for the requester check).

    Raises:
        ValidationError: unknown scope, missing or unknown target, or a target of another kind.
    """
    extra: dict[str, tuple[str, str | int | None]] = {
        WaiverScope.IMAGE_VERSION: ("image_version", image_version_id),
        WaiverScope.BASE_IMAGE: ("base_image", base_image_id),
        WaiverScope.SERVICE: ("service_name", service_name),
        WaiverScope.TEAM: ("team", team_id),
    }
    if scope not in extra:
        choices = ", ".join(WaiverScope.values)
        raise ValidationError(
            {
                "scope": gettext("Unknown scope %(scope)r; one of: %(choices)s.")
                % {"scope": scope, "choices": choices}
            }
        )
    others = [name for kind, (name, value) in extra.items() if kind != scope and value]
    if others:
        raise ValidationError(
            {
                "scope": gettext("A %(scope)s waiver names only its %(extra)s; drop %(others)s.")
                % {"scope": scope, "extra": extra[scope][0], "others": ", ".join(others)}
            }
        )
    if scope == WaiverScope.IMAGE_VERSION:
        if not image_version_id:
            raise ValidationError(
                {"image_version": gettext_lazy("An image-version waiver needs the version.")}
            )
        version = ImageVersion.objects.select_related("base_image").filter(pk=image_version_id)
        found = version.first()
        if found is None:
            raise ValidationError(
                {
                    "image_version": gettext("No image version #%(image_version_id)s.")
                    % {"image_version_id": image_version_id}
                }
            )
        return {"image_version": found}, found.base_image.owner_team_id
    if scope == WaiverScope.BASE_IMAGE:
        if not base_image_id:
            raise ValidationError(
                {"base_image": gettext_lazy("A base-image waiver needs the base image.")}
            )
        image = BaseImage.objects.filter(pk=base_image_id).first()
        if image is None:
            raise ValidationError(
                {
                    "base_image": gettext("No base image #%(base_image_id)s.")
                    % {"base_image_id": base_image_id}
                }
            )
        return {"base_image": image}, image.owner_team_id
    if scope == WaiverScope.SERVICE:
        name = (service_name or "").strip()
        if not name:
            raise ValidationError(
                {"service_name": gettext_lazy("A service waiver needs the service name.")}
            )
        owner = _service_team_id(name)
        if owner is None:
            raise ValidationError(
                {"service_name": gettext("Unknown service %(name)r.") % {"name": name[:80]}}
            )
        return {"service_name": name, "team_id": owner}, owner
    if not team_id:
        raise ValidationError({"team": gettext_lazy("A team waiver needs the team.")})
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise ValidationError({"team": gettext("No team #%(team_id)s.") % {"team_id": team_id}})
    return {"team": team}, team.pk


def _check_vex(status: str, justification: str, impact: str, action: str) -> None:
    if status not in VexStatus.values:
        raise ValidationError(
            {
                "status": gettext("Unknown status %(status)r; one of: %(values)s.")
                % {"status": status, "values": ", ".join(VexStatus.values)}
            }
        )
    if justification and justification not in VexJustification.values:
        raise ValidationError(
            {
                "justification": gettext(
                    "Unknown justification %(justification)r; one of: %(values)s."
                )
                % {"justification": justification, "values": ", ".join(VexJustification.values)}
            }
        )
    if status == VexStatus.NOT_AFFECTED and not (justification or impact.strip()):
        raise ValidationError(
            {
                "justification": gettext(
                    "OpenVEX: a not_affected waiver needs a justification or an impact statement."
                )
            }
        )
    if status == VexStatus.AFFECTED and not action.strip():
        raise ValidationError(
            {"action_statement": gettext("OpenVEX: an affected waiver needs an action statement.")}
        )


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> None:
    if expires_at is None:
        raise ValidationError({"expires_at": gettext_lazy("A waiver needs an expiry date.")})
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": gettext_lazy("The expiry needs a time zone.")})
    if expires_at <= now:
        raise ValidationError({"expires_at": gettext_lazy("The expiry must be in the future.")})
    days = waiver_max_days()
    if expires_at > now + dt.timedelta(days=days):
        raise ValidationError(
            {
                "expires_at": gettext(
                    "A waiver runs at most %(days)s days; choose an earlier expiry."
                )
                % {"days": days}
            }
        )


def waiver_request(
    *,
    actor: Actor,
    advisory_ref: str,
    scope: str,
    image_version_id: int | None = None,
    base_image_id: int | None = None,
    service_name: str = "",
    team_id: int | None = None,
    package_name: str = "",
    status: str,
    justification: str = "",
    impact_statement: str = "",
    action_statement: str = "",
    expires_at: dt.datetime | None,
) -> Waiver:
    """Ask for a waiver; a platform admin other than the requester approves it.

    Raises:
        ValidationError: unknown advisory, bad scope or target, OpenVEX rules, expiry (400).
        PermissionDenied: the actor is not a developer of the target's team nor an admin (403).
        Conflict: an open waiver for the same advisory, package and target exists (409).
    """
    now = timezone.now()
    ref = (advisory_ref or "").strip()
    package = (package_name or "").strip()
    if not ref:
        raise ValidationError(
            {"advisory_ref": gettext_lazy("Name the advisory (an id or a CVE alias).")}
        )
    if len(ref) > 100:
        raise ValidationError(
            {"advisory_ref": gettext_lazy("An advisory id has at most 100 characters.")}
        )
    if len(package) > 255:
        raise ValidationError(
            {"package_name": gettext_lazy("A package name has at most 255 characters.")}
        )
    target, owner_team_id = _resolve_scope(
        scope=scope,
        image_version_id=image_version_id,
        base_image_id=base_image_id,
        service_name=service_name,
        team_id=team_id,
    )
    if not advisory_ref_known(ref):
        raise ValidationError(
            {
                "advisory_ref": gettext("No imported advisory is named %(ref)r (by id or alias).")
                % {"ref": ref[:100]}
            }
        )
    _check_vex(status, justification, impact_statement, action_statement)
    _check_expiry(expires_at, now)
    assert expires_at is not None  # noqa: S101 - _check_expiry refused None
    if not _may_act_for(actor, owner_team_id):
        raise PermissionDenied(
            gettext(
                "Only a developer of the team that owns the waiver's target, or a platform admin, "
                "may request it."
            )
        )
    if actor.person is None and not actor.is_system:
        raise PermissionDenied(
            gettext(
                "This token has no person behind it, so it cannot request waivers; use a token a "
                "person created."
            )
        )
    target_filter = dict(target)
    with transaction.atomic():
        duplicate = Waiver.objects.select_for_update().filter(
            advisory_ref=ref,
            package_name=package,
            scope=scope,
            state__in=OPEN_STATES,
            expires_at__gt=now,
            **target_filter,
        )
        existing = duplicate.first()
        if existing is not None:
            raise Conflict(
                (
                    gettext(
                        "Waiver #%(waiver)s (%(state)s) already covers %(ref)s in %(package)s for "
                        "this %(scope)s; revoke it first."
                    )
                    if package
                    else gettext(
                        "Waiver #%(waiver)s (%(state)s) already covers %(ref)s for this "
                        "%(scope)s; revoke it first."
                    )
                )
                % {
                    "waiver": existing.pk,
                    "state": status_label(existing.state),
                    "ref": ref,
                    "package": package,
                    "scope": scope,
                },
                code="duplicate",
            )
        waiver = Waiver.objects.create(
            advisory_ref=ref,
            package_name=package,
            scope=scope,
            status=status,
            justification=justification,
            impact_statement=impact_statement.strip(),
            action_statement=action_statement.strip(),
            requested_by=actor.person,
            requested_by_repr=str(actor)[:200],
            expires_at=expires_at,
            **target,
        )
        audit_record(
            actor=actor,
            action="waiver.request",
            obj=waiver,
            after={
                "state": waiver.state,
                "advisory_ref": ref,
                "package_name": package,
                "scope": scope,
                "status": status,
                "expires_at": waiver.expires_at.isoformat(),
            },
        )
    return waiver
