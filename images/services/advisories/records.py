"""Writing one batch of advisory records: the advisory, its affected and alias rows, revisions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from images.advisories.osv import MAX_SUMMARY, OsvRecord
from images.advisories.severity import UNKNOWN, affected_severity, from_vectors, record_severity
from images.choices import AliasKind
from images.models import Advisory, AdvisoryAlias, AdvisoryImport, AdvisoryRevision, AffectedPackage


@dataclass(frozen=True)
class _Parsed:
    origin: str
    record: OsvRecord


@dataclass
class _Outcome:
    imported: int = 0
    unchanged: int = 0
    quarantined: int = 0
    changed: set[tuple[str, str]] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


def _advisory_fields(record: OsvRecord) -> dict[str, Any]:
    found = record_severity(
        record.severity,
        ((a.severity, a.ecosystem_specific, a.database_specific) for a in record.affected),
        record.database_specific,
    )
    return {
        "modified": record.modified,
        "published": record.published,
        "withdrawn": record.withdrawn,
        "summary": record.summary[:MAX_SUMMARY],
        "details": record.details,
        "severity": found.rating,
        "cvss_score": found.score,
        "cvss_vector": found.vector[:300],
        "record": record.raw,
        "record_sha256": record.sha256,
    }


def _children(
    advisory: Advisory, record: OsvRecord
) -> tuple[list[AdvisoryAlias], list[AffectedPackage]]:
    aliases: dict[tuple[str, str], AdvisoryAlias] = {}
    for kind, values in (
        (AliasKind.ALIAS, record.aliases),
        (AliasKind.UPSTREAM, record.upstream),
        (AliasKind.RELATED, record.related),
    ):
        for value in values:
            if value != record.id:
                aliases[(value, kind)] = AdvisoryAlias(advisory=advisory, alias=value, kind=kind)
    affected = []
    record_scored = from_vectors(record.severity) is not None
    for entry in record.affected:
        rating = affected_severity(
            entry.severity,
            entry.ecosystem_specific,
            entry.database_specific,
            record_scored=record_scored,
        )
        affected.append(
            AffectedPackage(
                advisory=advisory,
                ecosystem=entry.ecosystem,
                name=entry.name,
                purl=entry.purl,
                ranges=entry.ranges,
                versions=entry.versions,
                ecosystem_specific=entry.ecosystem_specific,
                severity="" if rating.rating == UNKNOWN else rating.rating,
                quarantined=entry.quarantined[:200],
            )
        )
    return list(aliases.values()), affected


def _keys(rows: Iterable[AffectedPackage]) -> set[tuple[str, str]]:
    return {(row.ecosystem, row.name) for row in rows if not row.quarantined}


def _update_rows(rows: list[Advisory], names: list[str]) -> None:
    """UPDATE each row's `names` with one prepared statement (executemany).

    `bulk_update` builds a CASE expression per field over the whole batch: measured 14 s of
    Python for 2,000 replaced records, against well under a second for this.
    """
    meta = Advisory._meta
    fields = [f for f in meta.concrete_fields if f.name in names and f.column]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    pk_column = quote(str(meta.pk.column)) if meta.pk is not None else "id"
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608 - names from the model
        f"WHERE {pk_column} = %s"
    )
    params = [
        [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _apply(batch: list[_Parsed], advisory_import: AdvisoryImport) -> _Outcome:
    """Write one batch (distinct ids) inside the caller's transaction."""
    outcome = _Outcome()
    existing = {
        a.osv_id: a
        for a in Advisory.objects.select_for_update()
        .filter(osv_id__in=[p.record.id for p in batch])
        .only("id", "osv_id", "modified", "record_sha256")
    }
    new: list[tuple[_Parsed, Advisory]] = []
    replaced: list[tuple[_Parsed, Advisory]] = []
    now = timezone.now()
    for item in batch:
        record = item.record
        current = existing.get(record.id)
        if current is None:
            new.append(
                (
                    item,
                    Advisory(
                        osv_id=record.id, last_import=advisory_import, **_advisory_fields(record)
                    ),
                )
            )
        elif record.modified > current.modified:
            for name, value in _advisory_fields(record).items():
                setattr(current, name, value)
            current.last_import = advisory_import
            current.updated_at = now
            replaced.append((item, current))
        else:
            outcome.unchanged += 1
            if record.modified < current.modified:
                outcome.lines.append(
                    f"unchanged {record.id}: modified {record.modified.isoformat()} is older "
                    f"than stored ({current.modified.isoformat()})"
                )
            elif record.sha256 != current.record_sha256:
                outcome.lines.append(
                    f"unchanged {record.id}: same modified as stored but other content; "
                    "kept the stored record (publish a new modified to change it)"
                )
    if new:
        Advisory.objects.bulk_create([advisory for _, advisory in new])
    if replaced:
        ids = [advisory.pk for _, advisory in replaced]
        old_rows = AffectedPackage.objects.filter(advisory_id__in=ids).only(
            "ecosystem", "name", "quarantined"
        )
        outcome.changed |= _keys(old_rows)
        AffectedPackage.objects.filter(advisory_id__in=ids).delete()
        AdvisoryAlias.objects.filter(advisory_id__in=ids).delete()
        _update_rows(
            [advisory for _, advisory in replaced],
            [*_advisory_fields(replaced[0][0].record), "last_import", "updated_at"],
        )
    revisions, aliases, affected = [], [], []
    tagged = [(item, advisory, "imported") for item, advisory in new]
    tagged += [(item, advisory, "replaced") for item, advisory in replaced]
    for item, advisory, verb in tagged:
        record = item.record
        revisions.append(
            AdvisoryRevision(
                advisory=advisory,
                modified=record.modified,
                record_sha256=record.sha256,
                advisory_import=advisory_import,
            )
        )
        alias_rows, affected_rows = _children(advisory, record)
        aliases += alias_rows
        affected += affected_rows
        outcome.changed |= _keys(affected_rows)
        for index, row in enumerate(affected_rows):
            if row.quarantined:
                outcome.quarantined += 1
                package = f"{row.ecosystem or '-'}/{row.name or '-'}"
                reason = f"affected[{index}] ({package}) quarantined: {row.quarantined}"
                outcome.lines.append(f"quarantined {record.id}: {reason}")
                outcome.notes.append((f"{item.origin} ({record.id})", reason))
        if record.withdrawn is not None:
            outcome.lines.append(f"{verb} {record.id}: withdrawn {record.withdrawn.isoformat()}")
    AdvisoryRevision.objects.bulk_create(revisions, ignore_conflicts=True)
    AdvisoryAlias.objects.bulk_create(aliases)
    AffectedPackage.objects.bulk_create(affected)
    outcome.imported = len(new) + len(replaced)
    return outcome
