"""Matching packages against advisories: version comparators per ecosystem and OSV's
evaluation of `affected[]` (pure code, no database)."""
