"""Writes of binary versions' ELF facts: the fields the reader fills, and their backfill.

An upload fills them (`binaries.binary_version_upload`); when the reader learns more
(`FACTS_VERSION` goes up), `binary_facts_backfill` re-reads the stored files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from ..choices import BinaryState
from ..elf import FACTS_VERSION, BinaryAnalysisError, BinaryFacts, analyze_binary
from ..models import BinaryVersion
from ..storage import binary_storage

BACKFILL_FACTS_JOB_KIND = "deployments.backfill_binary_facts"


def binary_facts_fields(facts: BinaryFacts) -> dict[str, Any]:
    """The BinaryVersion fields the ELF reader fills (upload and backfill alike)."""
    return {
        "file_type": facts.file_type,
        "linkage": facts.linkage,
        "interpreter": facts.interpreter,
        "needed": list(facts.needed),
        "min_glibc": facts.min_glibc,
        "libc": facts.libc,
        "machine": facts.machine,
        "elf_class": facts.elf_class,
        "runpath": list(facts.runpath),
        "version_needs": [list(pair) for pair in facts.version_needs],
        "facts_version": FACTS_VERSION,
    }


def binary_facts_backfill(
    *,
    batch_size: int = 200,
    limit: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Re-read the ELF facts of every stored version whose facts are older than the reader.

    Works in batches by id (`facts_version < FACTS_VERSION`, not purged); each file is copied
    from the binary storage to a temporary file, read, and its row updated. A file that is
    missing or no longer readable is counted and skipped (its row keeps its old facts).
    """
    storage = binary_storage()
    updated = skipped = 0
    last_id = 0
    while limit is None or updated + skipped < limit:
        batch = list(
            BinaryVersion.objects.filter(pk__gt=last_id, facts_version__lt=FACTS_VERSION)
            .exclude(state=BinaryState.PURGED)
            .order_by("pk")[:batch_size]
        )
        if not batch:
            break
        for row in batch:
            last_id = row.pk
            if limit is not None and updated + skipped >= limit:
                break
            try:
                with (
                    tempfile.NamedTemporaryFile(prefix="facts-") as tmp,
                    storage.open(row.file, "rb") as source,
                ):
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        tmp.write(chunk)
                    tmp.flush()
                    facts = analyze_binary(tmp.name)
            except (OSError, BinaryAnalysisError) as exc:
                skipped += 1
                log(f"skipped {row} (#{row.pk}): {exc}")
                continue
            BinaryVersion.objects.filter(pk=row.pk).update(**binary_facts_fields(facts))
            updated += 1
        log(f"backfill: {updated} updated, {skipped} skipped (up to #{last_id})")
    return {"updated": updated, "skipped": skipped}
