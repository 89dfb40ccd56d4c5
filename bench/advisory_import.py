"""Benchmark: importing a 10,000-record OSV zip (as OSV publishes `<ecosystem>/all.zip`).

In one run, against the PostgreSQL database in DATABASE_URL (migrated here; the benchmark's
advisories are deleted at the end — point it at a scratch database): generates N Debian records
(two affected packages, two aliases, a CVSS vector each), zips them, then measures
* `parse_only` — the floor: read the zip and validate every record, no database;
* `import_new` — every record is new (Advisory + revision + aliases + affected rows);
* `import_same` — the same zip again: every record unchanged;
* `import_newer` — every record with a newer `modified`: replaced, old rows deleted.
Prints JSON with seconds, records/s and the ratio to the floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python \\
        bench/advisory_import.py [--records 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a scratch PostgreSQL database.", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bip-bench-osv-"))
    os.environ["PORTAL_VAR_DIR"] = str(work / "var")
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["PORTAL_ADVISORY_IMPORT_ROOTS"] = str(work)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(BASE))
    import django

    django.setup()
    from django.core.management import call_command

    from images.advisories.osv import parse_record
    from images.advisories.sources import iter_file
    from images.models import Advisory, AdvisoryImport
    from images.services.advisories import advisory_import_run, import_limits
    from tests.images.osv_import import generated_records, zip_of

    call_command("migrate", verbosity=0)
    Advisory.objects.filter(osv_id__startswith="DEBIAN-CVE-2099-").delete()
    first = zip_of(generated_records(args.records), work / "all.zip")
    newer = zip_of(
        generated_records(args.records, modified="2024-06-01T00:00:00Z"), work / "newer.zip"
    )

    def parse_only() -> None:
        for raw in iter_file(first, limits=import_limits()):
            assert raw.data is not None
            parse_record(raw.data)

    def run(path: Path) -> dict[str, int]:
        record = AdvisoryImport.objects.create(source_kind="path", source=str(path))
        summary = advisory_import_run(advisory_import=record, log=lambda line: None)
        return {k: summary[k] for k in ("imported", "unchanged", "rejected")}

    results: dict[str, dict[str, object]] = {}
    start = time.perf_counter()
    parse_only()
    results["parse_only"] = {"seconds": round(time.perf_counter() - start, 3)}
    for name, path in (("import_new", first), ("import_same", first), ("import_newer", newer)):
        start = time.perf_counter()
        counts = run(path)
        seconds = time.perf_counter() - start
        results[name] = {
            "seconds": round(seconds, 3),
            "records_per_second": round(args.records / seconds),
            "ratio_to_parse_only": round(seconds / float(results["parse_only"]["seconds"]), 2),
            **counts,
        }
    Advisory.objects.filter(osv_id__startswith="DEBIAN-CVE-2099-").delete()
    print(json.dumps({"records": args.records, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
