"""The blast radius of an advisory: CVE → packages → image and binary versions → deployments
(both modes, per environment) → services → teams.

Composed here because images knows nothing of deployments. The advisory's family (every
record aliasing it, both directions) comes from `images.scan_selectors.advisory_family`; the
rest is a fixed number of queries, aggregated in PostgreSQL, whatever the number of
deployments: lists are capped (`LIST_LIMIT`), counts are exact.

A service team's actor sees its own services' part only (binary versions, deployments,
services, teams); image versions are the platform's catalog and are shown to everyone who may
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q
from django.utils.translation import gettext

from images.choices import SEVERITY_RANK, Severity
from images.models import Advisory, Finding, ImageVersion
from images.scan_selectors import advisory_family
from portal.actors import Actor

from ..choices import DeploymentMode
from ..models import BinaryVersion, Deployment
from . import team_readable

LIST_LIMIT = 500


class UnknownAdvisory(LookupError):
    """No advisory has this id, and none names it as an alias (a 404)."""


@dataclass
class Impact:
    """What an advisory reaches, as far as the actor may see (plain values, JSON-ready)."""

    advisory: Advisory
    advisories: list[dict[str, Any]]
    packages: list[dict[str, Any]]
    image_versions: list[dict[str, Any]]
    binary_versions: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    environments: list[dict[str, Any]]
    services: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    counts: dict[str, Any]
    scoped: bool
    truncated: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The API's body."""
        return {
            "advisory": self.advisories[0] if self.advisories else None,
            "advisories": self.advisories,
            "counts": self.counts,
            "packages": self.packages,
            "image_versions": self.image_versions,
            "binary_versions": self.binary_versions,
            "deployments": self.deployments,
            "environments": self.environments,
            "services": self.services,
            "teams": self.teams,
            "scoped_to_teams": self.scoped,
            "truncated": self.truncated,
            "list_limit": LIST_LIMIT,
        }


def _worst(severities: list[str]) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK.get(Severity(s), 0), default="")


def advisory_impact(*, advisory_ref: str, actor: Actor) -> Impact:
    """The blast radius of `advisory_ref` (an OSV id or an alias such as a CVE id).

    Raises:
        UnknownAdvisory: nothing has this id or alias.
    """
    family = advisory_family(advisory_ref)
    if not family:
        raise UnknownAdvisory(
            gettext("No advisory has the id or alias %(advisory_ref)r.")
            % {"advisory_ref": advisory_ref}
        )
    family_ids = [a.pk for a in family]
    open_findings = Finding.objects.filter(advisory_id__in=family_ids, resolved_at__isnull=True)

    # Packages: one row per (package, advisory), with how many scanned digests carry it.
    package_rows = (
        open_findings.order_by()
        .values(
            "package__ecosystem",
            "package__name",
            "package__version",
            "package__source_name",
            "fixed_version",
            "fix_state",
            "severity",
            "advisory__osv_id",
        )
        .annotate(sboms=Count("sbom_id", distinct=True))
        .order_by("package__ecosystem", "package__name", "package__version", "advisory__osv_id")
    )
    packages = [
        {
            "ecosystem": r["package__ecosystem"],
            "name": r["package__name"],
            "version": r["package__version"],
            "source_name": r["package__source_name"],
            "fixed_version": r["fixed_version"],
            "fix_state": r["fix_state"],
            "severity": r["severity"],
            "advisory": r["advisory__osv_id"],
            "sboms": r["sboms"],
        }
        for r in package_rows[: LIST_LIMIT + 1]
    ]
    package_count = open_findings.order_by().values("package_id").distinct().count()
    worst_by_sbom: dict[int, list[str]] = {}
    for sbom_id, severity in open_findings.order_by().values_list("sbom_id", "severity").distinct():
        worst_by_sbom.setdefault(sbom_id, []).append(severity)
    sbom_ids = sorted(worst_by_sbom)

    versions = list(
        ImageVersion.objects.filter(sbom_id__in=sbom_ids)
        .select_related("base_image")
        .order_by("base_image__name", "-created_at", "-id")
        .values("id", "tag", "digest", "state", "sbom_id", "base_image_id", "base_image__name")
    )
    image_versions = [
        {
            "id": v["id"],
            "base_image": v["base_image__name"],
            "base_image_id": v["base_image_id"],
            "tag": v["tag"],
            "digest": v["digest"],
            "state": v["state"],
            "severity": _worst(worst_by_sbom.get(v["sbom_id"], [])),
        }
        for v in versions
    ]
    version_ids = [v["id"] for v in versions]

    readable = team_readable(actor, "service__team")
    binaries = list(
        BinaryVersion.objects.filter(sbom_id__in=sbom_ids)
        .filter(readable)
        .order_by("service__name", "-created_at", "-id")
        .values("id", "version", "arch", "state", "sbom_id", "service__name")
    )
    binary_versions = [
        {
            "id": b["id"],
            "service": b["service__name"],
            "version": b["version"],
            "arch": b["arch"],
            "state": b["state"],
            "severity": _worst(worst_by_sbom.get(b["sbom_id"], [])),
        }
        for b in binaries
    ]
    binary_ids = [b["id"] for b in binaries]

    affected = Deployment.objects.filter(
        Q(runtime_version_id__in=version_ids) | Q(binary_version_id__in=binary_ids)
    ).filter(readable)
    by_env_mode = (
        affected.order_by()
        .values("environment__name", "mode")
        .annotate(n=Count("id"))
        .order_by("environment__name", "mode")
    )
    environments: dict[str, dict[str, Any]] = {}
    by_mode = {m: 0 for m in DeploymentMode.values}
    for row in by_env_mode:
        env = environments.setdefault(
            row["environment__name"],
            {"name": row["environment__name"], "total": 0, **{m: 0 for m in DeploymentMode.values}},
        )
        env[row["mode"]] = row["n"]
        env["total"] += row["n"]
        by_mode[row["mode"]] = by_mode.get(row["mode"], 0) + row["n"]

    by_service = (
        affected.order_by()
        .values("service__name", "service__team__name")
        .annotate(
            n=Count("id"),
            environments=Count("environment", distinct=True),
            volume=Count("id", filter=Q(mode=DeploymentMode.VOLUME)),
            image=Count("id", filter=Q(mode=DeploymentMode.IMAGE)),
        )
        .order_by("service__team__name", "service__name")
    )
    services: list[dict[str, Any]] = []
    teams: dict[str, dict[str, Any]] = {}
    for srow in by_service:
        team_name = srow["service__team__name"]
        services.append(
            {
                "name": srow["service__name"],
                "team": team_name,
                "deployments": srow["n"],
                "environments": srow["environments"],
                DeploymentMode.VOLUME: srow["volume"],
                DeploymentMode.IMAGE: srow["image"],
            }
        )
        team = teams.setdefault(team_name, {"name": team_name, "services": 0, "deployments": 0})
        team["services"] += 1
        team["deployments"] += srow["n"]

    version_set, binary_set = set(version_ids), set(binary_ids)
    deployment_rows = affected.order_by("environment__name", "service__name").values(
        "id",
        "mode",
        "environment__name",
        "service__name",
        "service__team__name",
        "runtime_version_id",
        "runtime_version__tag",
        "runtime_version__base_image__name",
        "binary_version_id",
        "binary_version__version",
    )[: LIST_LIMIT + 1]
    deployments = [
        {
            "id": d["id"],
            "service": d["service__name"],
            "team": d["service__team__name"],
            "environment": d["environment__name"],
            "mode": d["mode"],
            "image": f"{d['runtime_version__base_image__name']}:{d['runtime_version__tag']}",
            "binary_version": d["binary_version__version"],
            "via_image": d["runtime_version_id"] in version_set,
            "via_binary": d["binary_version_id"] in binary_set,
        }
        for d in deployment_rows
    ]
    total = sum(e["total"] for e in environments.values())
    counts = {
        "advisories": len(family),
        "packages": package_count,
        "sboms": len(sbom_ids),
        "image_versions": len(image_versions),
        "base_images": len({v["base_image_id"] for v in image_versions}),
        "binary_versions": len(binary_versions),
        "deployments": total,
        "deployments_by_mode": by_mode,
        "deployments_by_environment": {name: e["total"] for name, e in environments.items()},
        "environments": len(environments),
        "services": len(services),
        "teams": len(teams),
    }
    truncated = {
        "packages": len(packages) > LIST_LIMIT,
        "deployments": len(deployments) > LIST_LIMIT,
        "services": len(services) > LIST_LIMIT,
        "image_versions": len(image_versions) > LIST_LIMIT,
        "binary_versions": len(binary_versions) > LIST_LIMIT,
    }
    return Impact(
        advisory=family[0],
        advisories=[
            {
                "id": a.osv_id,
                "summary": a.summary,
                "severity": a.severity,
                "cvss_score": str(a.cvss_score) if a.cvss_score is not None else None,
                "withdrawn": a.withdrawn.isoformat() if a.withdrawn else None,
            }
            for a in family
        ],
        packages=packages[:LIST_LIMIT],
        image_versions=image_versions[:LIST_LIMIT],
        binary_versions=binary_versions[:LIST_LIMIT],
        deployments=deployments[:LIST_LIMIT],
        environments=list(environments.values()),
        services=services[:LIST_LIMIT],
        teams=sorted(teams.values(), key=lambda t: t["name"]),
        counts=counts,
        scoped=not _sees_all(actor),
        truncated=truncated,
    )


def _sees_all(actor: Actor) -> bool:
    if actor.is_system and actor.system == "anonymous":
        return False
    if actor.is_system or actor.is_platform_admin:
        return True
    from portal.models import Team

    return Team.objects.filter(pk__in=sorted(actor.team_ids), is_platform=True).exists()
