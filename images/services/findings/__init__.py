"""Findings: match a scanned digest against the advisories, re-match only what an import
changed, reconcile (open, refresh, resolve — never delete).

The index is `AffectedPackage` keyed by (OSV ecosystem, package name); every package is
looked up by its binary name and its source name (Debian's advisories name source
packages: `glibc` for `libc6`, `perl` for `perl-base`), in batches of keys — never one
query per package. A package is evaluated once (its version against each affected row,
images.vulns.osv) and the result fans out to every SBOM that contains it, so a re-match
after an import touches only the packages whose names the import changed and never runs
the scanner. Findings belong to the SBOM (the digest), so image and binary versions with
those bytes share them.

Reconciling one scope (an SBOM's findings, or the findings of some packages in every
SBOM): a new match is created (`first_seen` now); a finding still matching is refreshed
(`last_seen`, fixed version, fix state, severity) and reopened if it had been resolved; a
finding no longer matching is resolved — `withdrawn` when its advisory is withdrawn,
`package_gone` when the package left the SBOM, `fixed_in_data` otherwise.

Three rooms:

* `evaluate`: the advisory index by key, and each package evaluated once against it.
* `reconcile`: matches into findings (open, refresh, reopen, resolve), SBOM summaries, events.
* `match`: `sbom_match` (one SBOM after a scan), `findings_rematch` (keys an import changed).
"""

from __future__ import annotations

from images.services.findings.evaluate import KEY_BATCH
from images.services.findings.match import findings_rematch, sbom_match
from images.services.findings.reconcile import ID_BATCH

__all__ = ["ID_BATCH", "KEY_BATCH", "findings_rematch", "sbom_match"]
