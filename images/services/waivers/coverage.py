"""Which active waivers cover which findings (by advisory or alias); waivers as OpenVEX."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from images.choices import AliasKind, WaiverScope, WaiverState
from images.models import Advisory, AdvisoryAlias, Finding, Package, Waiver
from portal.actors import Actor

# Alias kinds that make two records "the same vulnerability" for a waiver (`related` does not).
_SAME_VULNERABILITY = (AliasKind.ALIAS, AliasKind.UPSTREAM)


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
    from images.vulns.openvex import VexStatement, openvex_document  # noqa: PLC0415 - pure module

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
