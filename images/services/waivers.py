"""Waivers: request, approve (a platform admin other than the requester), reject, revoke; and
which active waivers cover which findings (expiry by date, no rescan).

A waiver names an advisory by its id or any alias; it covers a finding whose advisory is that
record or is linked to it by an alias in either direction (waiving CVE-X covers DSA-Y, which
aliases CVE-X, and waiving DSA-Y covers CVE-X). Services live in deployments, a layer above:
a service name is turned into its team through a resolver deployments registers at start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition
from portal.models import Team
from portal.templatetags.portal_i18n import status_label

from ..choices import AliasKind, VexJustification, VexStatus, WaiverScope, WaiverState
from ..models import Advisory, AdvisoryAlias, BaseImage, Finding, ImageVersion, Package, Waiver

# Alias kinds that make two records "the same vulnerability" for a waiver (`related` does not).
_SAME_VULNERABILITY = (AliasKind.ALIAS, AliasKind.UPSTREAM)
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


def _is_requester(waiver: Waiver, actor: Actor) -> bool:
    person = actor.person
    return person is not None and waiver.requested_by_id == person.pk


# "… it cannot be approved", one whole sentence per decision.
_CANNOT = {
    "approve": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be approved (allowed from: %(allowed)s)."
    ),
    "reject": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be rejected (allowed from: %(allowed)s)."
    ),
    "revoke": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be revoked (allowed from: %(allowed)s)."
    ),
}


def _decide(
    *, waiver_id: int, actor: Actor, to: str, from_states: tuple[str, ...], note: str, verb: str
) -> Waiver:
    with transaction.atomic():
        waiver = Waiver.objects.select_for_update().filter(pk=waiver_id).first()
        if waiver is None:
            raise ValidationError(
                {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
            )
        if waiver.state not in from_states:
            raise IllegalTransition(
                str(_CANNOT[verb])
                % {
                    "waiver": waiver.pk,
                    "state": status_label(waiver.state),
                    "allowed": ", ".join(str(status_label(state)) for state in from_states),
                }
            )
        before = waiver.state
        fields: dict[str, Any] = {"state": to, "decision_note": note.strip()[:5000]}
        if verb in ("approve", "reject"):
            fields["decided_at"] = timezone.now()
            fields["approved_by"] = actor.person if verb == "approve" else None
        Waiver.objects.filter(pk=waiver.pk).update(**fields)
        waiver.refresh_from_db()
        audit_record(
            actor=actor,
            action=f"waiver.{verb}",
            obj=waiver,
            before={"state": before},
            after={"state": waiver.state, "note": waiver.decision_note[:500]},
        )
    return waiver


# Completes "Only a platform admin may %(verb)s waivers." in the request's language.
_WAIVER_VERBS = {
    "approve": pgettext_lazy("may … waivers", "approve"),
    "reject": pgettext_lazy("may … waivers", "reject"),
}


def _require_reviewer(waiver_id: int, actor: Actor, verb: str) -> Waiver:
    waiver = Waiver.objects.filter(pk=waiver_id).first()
    if waiver is None:
        raise ValidationError(
            {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
        )
    verb_text = _WAIVER_VERBS[verb]
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext("Only a platform admin may %(verb)s waivers.") % {"verb": verb_text}
        )
    if not actor.is_system and actor.person is None:
        raise PermissionDenied(
            gettext(
                "This token has no person behind it, so it cannot %(verb)s waivers; use a token "
                "a platform admin created."
            )
            % {"verb": verb_text}
        )
    if _is_requester(waiver, actor):
        raise PermissionDenied(
            gettext("You requested waiver #%(waiver)s; another platform admin must %(verb)s it.")
            % {"waiver": waiver.pk, "verb": verb_text}
        )
    return waiver


def waiver_approve(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested → approved, by a platform admin who did not request it (four eyes).

    Raises:
        PermissionDenied: not a platform admin, a token without a person, or the requester.
        IllegalTransition: not `requested` (409); Conflict: it expired already (409).
    """
    waiver = _require_reviewer(waiver_id, actor, "approve")
    if waiver.expires_at <= timezone.now():
        raise Conflict(
            gettext("Waiver #%(waiver)s expired on %(date)s; request a new one.")
            % {"waiver": waiver.pk, "date": f"{waiver.expires_at:%Y-%m-%d}"},
            code="expired",
        )
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.APPROVED,
        from_states=(WaiverState.REQUESTED,),
        note=note,
        verb="approve",
    )


def waiver_reject(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested → rejected, by a platform admin who did not request it."""
    _require_reviewer(waiver_id, actor, "reject")
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.REJECTED,
        from_states=(WaiverState.REQUESTED,),
        note=note,
        verb="reject",
    )


def waiver_revoke(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested|approved → revoked, by its requester or a platform admin.

    Raises:
        PermissionDenied: neither the requester nor a platform admin (403).
        IllegalTransition: already rejected or revoked (409).
    """
    waiver = Waiver.objects.filter(pk=waiver_id).first()
    if waiver is None:
        raise ValidationError(
            {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
        )
    if not (actor.is_platform_admin or _is_requester(waiver, actor)):
        raise PermissionDenied(
            gettext_lazy("Only the requester or a platform admin may revoke a waiver.")
        )
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.REVOKED,
        from_states=OPEN_STATES,
        note=note,
        verb="revoke",
    )


def waiver_active_q(now: dt.datetime | None = None) -> Q:
    """Approved and not yet expired (expiry is by date: no job has to run)."""
    return Q(state=WaiverState.APPROVED, expires_at__gt=now or timezone.now())


def waiver_list_for_actor(actor: Actor) -> QuerySet[Waiver]:
    """Platform admins: every waiver; others: their own and those of their teams' targets."""
    waivers = Waiver.objects.select_related(
        "image_version__base_image", "base_image", "team", "requested_by", "approved_by"
    )
    if actor.is_platform_admin:
        return waivers
    teams = actor.team_ids
    mine = Q(requested_by=actor.person) if actor.person is not None else Q(pk__in=[])
    return waivers.filter(
        mine
        | Q(team_id__in=teams)
        | Q(base_image__owner_team_id__in=teams)
        | Q(image_version__base_image__owner_team_id__in=teams)
    )


def advisory_names(advisory_ids: Iterable[int]) -> dict[int, set[str]]:
    """Advisory id → every name that denotes the same vulnerability: its own id, the aliases
    and upstreams it lists, and the ids of records that list it as theirs."""
    ids = set(advisory_ids)
    names: dict[int, set[str]] = {}
    own: dict[str, int] = {}
    for pk, osv_id in Advisory.objects.filter(pk__in=ids).values_list("pk", "osv_id"):
        names[pk] = {osv_id}
        own[osv_id] = pk
    for pk, alias in AdvisoryAlias.objects.filter(
        advisory_id__in=ids, kind__in=_SAME_VULNERABILITY
    ).values_list("advisory_id", "alias"):
        names[pk].add(alias)
    for alias, other in AdvisoryAlias.objects.filter(
        alias__in=list(own), kind__in=_SAME_VULNERABILITY
    ).values_list("alias", "advisory__osv_id"):
        names[own[alias]].add(other)
    return names


_SCOPE_RANK: dict[str, int] = {
    WaiverScope.IMAGE_VERSION: 0,
    WaiverScope.SERVICE: 1,
    WaiverScope.BASE_IMAGE: 2,
    WaiverScope.TEAM: 3,
}


def active_waivers_for(
    findings: Iterable[Finding],
    *,
    image_version_id: int | None = None,
    base_image_id: int | None = None,
    service_name: str = "",
    team_id: int | None = None,
) -> dict[int, Waiver]:
    """Finding id → the approved, unexpired waiver that covers it in this context.

    A waiver covers a finding when its advisory_ref names the finding's advisory (by id or
    alias, either direction), its package_name is blank or the package's name or source name,
    and its scope is one of the given context's (this version, its base image, the service,
    the team). The narrowest scope wins, then the latest expiry. Five queries, whatever
    the number of findings.
    """
    items = list(findings)
    scope_q = Q(pk__in=[])
    if image_version_id:
        scope_q |= Q(scope=WaiverScope.IMAGE_VERSION, image_version_id=image_version_id)
    if base_image_id:
        scope_q |= Q(scope=WaiverScope.BASE_IMAGE, base_image_id=base_image_id)
    if service_name:
        scope_q |= Q(scope=WaiverScope.SERVICE, service_name=service_name)
    if team_id:
        scope_q |= Q(scope=WaiverScope.TEAM, team_id=team_id)
    if not items:
        return {}
    names = advisory_names({f.advisory_id for f in items})
    every_name = set().union(*names.values()) if names else set()
    waivers = list(
        Waiver.objects.filter(waiver_active_q(), scope_q, advisory_ref__in=every_name).order_by(
            "-expires_at", "-id"
        )
    )
    if not waivers:
        return {}
    packages = {
        pk: {name, source}
        for pk, name, source in Package.objects.filter(
            pk__in={f.package_id for f in items}
        ).values_list("pk", "name", "source_name")
    }
    waivers.sort(key=lambda w: _SCOPE_RANK.get(w.scope, 9))
    covered: dict[int, Waiver] = {}
    for finding in items:
        refs = names.get(finding.advisory_id, set())
        package_names = packages.get(finding.package_id, set()) - {""}
        for waiver in waivers:
            if waiver.advisory_ref in refs and (
                not waiver.package_name or waiver.package_name in package_names
            ):
                covered[finding.pk] = waiver
                break
    return covered


def _oci_purl(name: str, host: str, digest: str = "") -> str:
    base = name.rsplit("/", 1)[-1]
    version = "@" + digest.replace(":", "%3A") if digest else ""
    repository = f"{host}/{name}" if host else name
    return f"pkg:oci/{base}{version}?repository_url={repository}"


def waiver_products(waiver: Waiver) -> list[str]:
    """The OpenVEX product ids a waiver speaks for: an OCI purl of the version or the image,
    else a portal URN of the service or team."""
    if waiver.scope == WaiverScope.IMAGE_VERSION and waiver.image_version is not None:
        version = waiver.image_version
        return [_oci_purl(version.base_image.name, version.registry.host, version.digest)]
    if waiver.scope == WaiverScope.BASE_IMAGE and waiver.base_image is not None:
        image = waiver.base_image
        return [_oci_purl(image.name, image.registry.host if image.registry else "")]
    if waiver.scope == WaiverScope.SERVICE:
        return [f"urn:base-image-portal:service:{waiver.service_name}"]
    team = waiver.team.name if waiver.team is not None else str(waiver.team_id)
    return [f"urn:base-image-portal:team:{team}"]


def waivers_openvex(*, actor: Actor, waivers: QuerySet[Waiver] | None = None) -> dict[str, Any]:
    """The approved, unexpired waivers `actor` may see, as one OpenVEX 0.2.0 document."""
    from ..vulns.openvex import VexStatement, openvex_document  # noqa: PLC0415 - pure module

    rows = (waivers if waivers is not None else waiver_list_for_actor(actor)).filter(
        waiver_active_q()
    )
    rows = rows.select_related("image_version__registry", "base_image__registry").order_by("id")
    items = list(rows)
    refs = {w.advisory_ref for w in items}
    ids = set(Advisory.objects.filter(osv_id__in=refs).values_list("pk", flat=True))
    ids |= set(AdvisoryAlias.objects.filter(alias__in=refs).values_list("advisory_id", flat=True))
    names = advisory_names(ids)
    aliases: dict[str, set[str]] = {}
    for group in names.values():
        for ref in refs & group:
            aliases.setdefault(ref, set()).update(group - {ref})
    statements = [
        VexStatement(
            vulnerability=w.advisory_ref,
            aliases=sorted(aliases.get(w.advisory_ref, ())),
            products=waiver_products(w),
            status=w.status,
            justification=w.justification,
            impact_statement=w.impact_statement,
            action_statement=w.action_statement,
            status_notes=(
                f"Waiver #{w.pk}, package {w.package_name or 'any'}, expires "
                f"{w.expires_at:%Y-%m-%d}."
            ),
            timestamp=w.decided_at or w.created_at,
        )
        for w in items
    ]
    return openvex_document(statements, author="Base Image Portal", timestamp=timezone.now())
