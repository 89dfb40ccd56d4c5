"""Advisory imports end to end on PostgreSQL: the service, the job, the command, the beat task."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from images.advisories.osv import parse_record
from images.models import Advisory, AdvisoryAlias, AdvisoryImport, AdvisoryRevision, AffectedPackage
from images.services import advisories as service
from images.services import findings
from images.services.advisories import advisory_import_start
from images.services.advisories import records as advisory_records
from images.services.advisories import run as advisory_run
from images.tasks import import_advisory_mirrors
from portal.actors import Actor
from portal.jobs import job_execute
from portal.models import AuditEntry, Job
from tests.images.osv_import import (
    FIXTURES,
    GOOD,
    generated_records,
    good_records,
    serve,
    set_import_roots,
    zip_of,
)

pytestmark = pytest.mark.django_db

ACTOR = Actor.system_actor("test")
GOOD_IDS = {
    "DSA-5532-1",
    "DEBIAN-CVE-2023-5678",
    "ALPINE-CVE-2023-42363",
    "RLSA-2024:2447",
    "OESA-2024-1433",
    "GO-2024-2687",
    "GHSA-9wx4-h78v-vm56",
    "UBUNTU-CVE-2024-2511",
    "GHSA-mq26-g339-26xf",
}


@pytest.fixture
def import_roots(settings: Any, tmp_path: Path) -> Path:
    return set_import_roots(settings, tmp_path)


@pytest.fixture
def rematch_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """Record the keys handed to the re-match seam (owned by the matching work, a stub here)."""
    calls: list[list[tuple[str, str]]] = []

    def rematch(*, keys: Any) -> dict[str, Any]:
        calls.append([tuple(k) for k in keys])
        return {"packages": 7}

    monkeypatch.setattr(findings, "findings_rematch", rematch)
    return calls


def run(**source: Any) -> tuple[Job, AdvisoryImport]:
    job = advisory_import_start(actor=ACTOR, **source)
    state = job_execute(job.pk)
    job.refresh_from_db()
    assert state == "succeeded", job.error
    return job, AdvisoryImport.objects.get(job=job)


def test_the_fixtures_import_with_severity_aliases_and_keys(import_roots, rematch_calls) -> None:
    job, result = run(path=str(GOOD))
    assert (result.imported, result.unchanged, result.rejected, result.quarantined) == (9, 0, 0, 0)
    assert set(Advisory.objects.values_list("osv_id", flat=True)) == GOOD_IDS
    assert AdvisoryRevision.objects.count() == 9
    assert result.finished_at is not None and result.rematched_packages == 7
    assert job.result["imported"] == 9 and job.result["rejected"] == 0

    severities = {
        a.osv_id: (a.severity, a.cvss_score, a.cvss_vector[:8]) for a in Advisory.objects.all()
    }
    assert severities["ALPINE-CVE-2023-42363"] == ("medium", Decimal("5.5"), "CVSS:3.1")
    assert severities["GHSA-9wx4-h78v-vm56"] == ("medium", Decimal("5.3"), "CVSS:4.0")  # v4 wins
    assert severities["GHSA-mq26-g339-26xf"] == ("critical", Decimal("9.8"), "CVSS:3.1")
    assert severities["DSA-5532-1"] == ("high", None, "")  # Debian urgency, a hint
    assert severities["DEBIAN-CVE-2023-5678"] == ("low", None, "")
    assert severities["UBUNTU-CVE-2024-2511"] == ("low", None, "")
    assert severities["RLSA-2024:2447"] == ("medium", None, "")  # Red Hat family's "Moderate"
    assert severities["GO-2024-2687"] == ("unknown", None, "")

    # CVE-X finds the DSA, the DEBIAN-CVE and the Rocky advisory (aliases and upstream)
    found = set(
        AdvisoryAlias.objects.filter(alias="CVE-2023-5678").values_list("advisory__osv_id", "kind")
    )
    assert found == {
        ("DSA-5532-1", "alias"),
        ("DEBIAN-CVE-2023-5678", "upstream"),
        ("RLSA-2024:2447", "alias"),
    }
    assert AdvisoryAlias.objects.filter(alias="DSA-5532-1", kind="related").exists()

    pip = AffectedPackage.objects.get(advisory__osv_id="GHSA-mq26-g339-26xf")
    assert [r["type"] for r in pip.ranges] == ["ECOSYSTEM", "GIT"]  # GIT ranges are stored
    assert pip.severity == "critical"
    rocky = AffectedPackage.objects.get(advisory__osv_id="RLSA-2024:2447")
    assert (rocky.ecosystem, rocky.name, rocky.ranges[0]["events"][1]["fixed"]) == (
        "Rocky Linux:9",
        "openssl",
        "1:3.0.7-27.el9",
    )
    oe = AffectedPackage.objects.get(advisory__osv_id="OESA-2024-1433")
    assert oe.versions == ["1:3.0.12-4.oe2203sp3"] and oe.ecosystem == "openEuler:22.03-LTS-SP3"

    keys = {tuple(k) for k in result.changed_keys}
    assert {("Debian:12", "openssl"), ("Debian:11", "openssl"), ("Go", "stdlib")} <= keys
    assert {("Go", "golang.org/x/net"), ("Alpine:v3.20", "busybox"), ("PyPI", "pip")} <= keys
    assert rematch_calls == [sorted(keys)]
    audit = AuditEntry.objects.get(action="advisory_import.start")
    assert audit.object_id == str(result.pk) and audit.after["source_kind"] == "path"


def test_the_same_file_twice_adds_nothing(import_roots, rematch_calls) -> None:
    run(path=str(GOOD))
    before = dict(Advisory.objects.values_list("osv_id", "updated_at"))
    job, again = run(path=str(GOOD))
    assert (again.imported, again.unchanged, again.rejected) == (0, 9, 0)
    assert AdvisoryRevision.objects.count() == 9
    assert dict(Advisory.objects.values_list("osv_id", "updated_at")) == before
    assert again.changed_keys == []
    assert rematch_calls[-1] == []


def test_a_newer_modified_replaces_an_older_is_unchanged_withdrawn_is_recorded(
    import_roots, rematch_calls
) -> None:
    run(path=str(GOOD))
    job, updates = run(path=str(FIXTURES / "updates"))
    assert (updates.imported, updates.unchanged, updates.rejected) == (2, 1, 0)
    assert "GO-2024-2687: modified 2024-03-01T00:00:00+00:00 is older than stored" in job.log

    dsa = Advisory.objects.get(osv_id="DSA-5532-1")
    assert dsa.summary == "openssl - security update (revised)"
    assert dsa.modified.isoformat() == "2024-02-01T09:30:00+00:00"
    assert list(dsa.affected.values_list("ecosystem", "name")) == [
        ("Debian:12", "openssl-backport")
    ]
    assert set(dsa.aliases.values_list("alias", flat=True)) == {
        "CVE-2023-5363",
        "CVE-2023-5678",
        "CVE-2023-5679",
    }
    assert sorted(r.modified.month for r in dsa.revisions.all()) == [1, 2]
    assert dsa.severity == "unknown"  # the new revision dropped the urgency

    alpine = Advisory.objects.get(osv_id="ALPINE-CVE-2023-42363")
    assert alpine.withdrawn is not None and alpine.withdrawn.isoformat().startswith("2024-08-01")
    assert "ALPINE-CVE-2023-42363: withdrawn" in job.log

    go = Advisory.objects.get(osv_id="GO-2024-2687")
    assert go.modified.isoformat().startswith("2024-06-04")  # the older revision changed nothing
    assert go.affected.count() == 2
    assert not go.revisions.filter(modified__month=3).exists()

    # old and new affected rows of replaced and withdrawn advisories
    assert {tuple(k) for k in updates.changed_keys} == {
        ("Debian:12", "openssl"),
        ("Debian:12", "openssl-backport"),
        ("Alpine:v3.20", "busybox"),
    }
    assert rematch_calls[-1] == sorted({tuple(k) for k in updates.changed_keys})


def test_bad_records_are_rejected_one_by_one_with_reasons(import_roots, rematch_calls) -> None:
    job, result = run(path=str(FIXTURES / "bad"))
    assert (result.imported, result.rejected) == (0, 9)
    reasons = {e["record"].split(" ")[0]: e["reason"] for e in result.errors}
    assert reasons["malformed.json"].startswith("malformed JSON")
    assert reasons["no-id.json"] == "no 'id'"
    assert reasons["no-modified.json"] == "no 'modified'"
    assert "both 'fixed' and 'last_affected'" in reasons["fixed-and-last-affected.json"]
    assert "no 'introduced'" in reasons["no-introduced.json"]
    assert "unknown range type" in reasons["unknown-range-type.json"]
    assert "time zone" in reasons["no-timezone.json"]
    for name in reasons:
        assert f"rejected {name}" in job.log
    assert Advisory.objects.count() == 0 and AdvisoryRevision.objects.count() == 0


def test_an_unsuffixed_ecosystem_is_quarantined_stored_and_not_a_key(
    import_roots, rematch_calls
) -> None:
    job, result = run(path=str(FIXTURES / "quarantine"))
    assert (result.imported, result.quarantined, result.rejected) == (1, 2, 0)
    rows = AffectedPackage.objects.filter(advisory__osv_id="DEBIAN-CVE-2024-0727")
    assert rows.count() == 3
    assert set(rows.exclude(quarantined="").values_list("ecosystem", flat=True)) == {
        "Debian",
        "Rocky Linux",
    }
    assert result.changed_keys == [["Debian:12", "openssl"]]
    assert any("quarantined" in e["reason"] for e in result.errors)
    assert "no release suffix" in job.log


def test_nul_and_nan_are_rejected_before_the_database(import_roots, rematch_calls) -> None:
    records = generated_records(3)
    bad = json.loads(records["DEBIAN-CVE-2099-00001.json"])
    bad["details"] = "NUL \u0000 in text"  # PostgreSQL refuses NUL in text and jsonb
    records["DEBIAN-CVE-2099-00001.json"] = json.dumps(bad).encode()
    records["nan.json"] = b'{"id": "X-1", "modified": "2024-01-01T00:00:00Z", "cvss": NaN}'
    archive = zip_of(records, import_roots / "mixed.zip")
    _, result = run(path=str(archive))
    assert (result.imported, result.rejected) == (2, 2)
    assert [e["reason"] for e in result.errors] == [
        "the record contains a NUL (\\u0000) character",
        "malformed JSON: NaN is not JSON",
    ]
    assert AffectedPackage.objects.count() == 4  # the other two, whole


def test_a_record_the_database_refuses_is_rejected_alone(import_roots, rematch_calls) -> None:
    """A batch the database refuses is retried one record per transaction (white box: the
    parser refuses NaN, so the refused record is built past it)."""
    parsed = [
        advisory_records._Parsed(name, parse_record(data))
        for name, data in generated_records(3).items()
    ]
    parsed[1] = advisory_records._Parsed(
        parsed[1].origin, dataclasses.replace(parsed[1].record, raw={"cvss": float("nan")})
    )
    record = AdvisoryImport.objects.create(source_kind="path", source="/x")
    tally = advisory_run._Tally()
    advisory_run._flush(parsed, record, tally)
    assert (tally.imported, tally.rejected) == (2, 1)
    assert tally.errors[0]["reason"] == "the database refused the record"
    assert not Advisory.objects.filter(osv_id=parsed[1].record.id).exists()
    assert not AffectedPackage.objects.filter(advisory__osv_id=parsed[1].record.id).exists()
    assert not AdvisoryRevision.objects.filter(advisory__osv_id=parsed[1].record.id).exists()
    assert AffectedPackage.objects.count() == 4  # the other two, whole


def test_two_revisions_of_one_id_in_one_file(import_roots, rematch_calls) -> None:
    old = json.loads((GOOD / "debian/DSA-5532-1.json").read_text())
    new = json.loads((FIXTURES / "updates/DSA-5532-1.json").read_text())
    (import_roots / "both.json").write_text(json.dumps([old, new, old]))
    _, result = run(path=str(import_roots / "both.json"))
    assert (result.imported, result.unchanged) == (2, 1)
    assert Advisory.objects.get().affected.get().name == "openssl-backport"
    assert AdvisoryRevision.objects.count() == 2


def test_a_zip_with_good_and_bad_entries(import_roots, rematch_calls) -> None:
    entries = good_records()
    entries["bad.json"] = (FIXTURES / "bad/no-introduced.json").read_bytes()
    entries["README.md"] = b"not a record"
    archive = zip_of(entries, import_roots / "all.zip")
    _, result = run(path=str(archive))
    assert (result.imported, result.rejected) == (6, 2)


def test_a_zip_bomb_fails_the_job_and_imports_nothing(import_roots, settings) -> None:
    settings.PORTAL_ADVISORY_MAX_TOTAL_BYTES = 1_000_000
    archive = zip_of({f"{n}.json": b"0" * 60_000 for n in range(20)}, import_roots / "bomb.zip")
    job = advisory_import_start(actor=ACTOR, path=str(archive))
    assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "declares 1200000 bytes uncompressed" in job.error
    result = AdvisoryImport.objects.get(job=job)
    assert result.errors[0]["record"] == "(source)" and "zip bomb" in result.errors[0]["reason"]
    assert Advisory.objects.count() == 0


def test_too_many_entries_fails_the_job(import_roots, settings) -> None:
    settings.PORTAL_ADVISORY_MAX_ENTRIES = 2
    archive = zip_of(generated_records(3), import_roots / "many.zip")
    job = advisory_import_start(actor=ACTOR, path=str(archive))
    assert job_execute(job.pk) == "failed"
    assert "has 3 entries; the limit is 2" in Job.objects.get(pk=job.pk).error
    assert Advisory.objects.count() == 0


@pytest.mark.parametrize(
    ("source", "field", "reason"),
    [
        ({}, None, "exactly one source"),
        ({"path": "/etc", "url": "http://x/"}, None, "got path, url"),
        ({"path": "/etc/passwd"}, "path", "outside the allowed import roots"),
        ({"path": "{fixtures}/../../../portal/settings.py"}, "path", "outside"),
        ({"path": "{root}/missing.json"}, "path", "does not exist"),
        ({"url": "http://evil.example/all.zip"}, "url", "not under an allowed advisory mirror"),
    ],
)
def test_start_refuses_bad_sources(import_roots, source, field, reason) -> None:
    source = {k: v.format(fixtures=FIXTURES, root=import_roots) for k, v in source.items()}
    with pytest.raises(ValidationError) as caught:
        advisory_import_start(actor=ACTOR, **source)
    messages = caught.value.message_dict[field] if field else caught.value.messages
    assert reason in " ".join(messages)
    assert AdvisoryImport.objects.count() == 0 and Job.objects.count() == 0


def test_a_symlink_escaping_the_root_is_refused(import_roots, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json").write_text((GOOD / "go/GO-2024-2687.json").read_text())
    (import_roots / "link").symlink_to(outside)
    with pytest.raises(ValidationError, match="outside the allowed import roots"):
        advisory_import_start(actor=ACTOR, path=str(import_roots / "link" / "x.json"))
    # inside a directory import, the escaping file is rejected and the rest imported
    (import_roots / "dir").mkdir()
    (import_roots / "dir" / "escape.json").symlink_to(outside / "x.json")
    (import_roots / "dir" / "ok.json").write_text((GOOD / "debian/DSA-5532-1.json").read_text())
    _, result = run(path=str(import_roots / "dir"))
    assert (result.imported, result.rejected) == (1, 1)
    assert result.errors[0]["reason"] == "the file links outside the allowed import roots"


def test_an_upload_is_imported_and_its_file_removed(import_roots, rematch_calls, settings) -> None:
    data = (GOOD / "list/pypi-and-ubuntu.json").read_bytes()
    job, result = run(upload=SimpleUploadedFile("osv.json", data, "application/json"))
    assert (result.source_kind, result.source, result.imported) == ("upload", "osv.json", 3)
    assert not any(Path(settings.PORTAL_ADVISORY_UPLOAD_DIR).rglob("*.json"))
    settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES = 10
    with pytest.raises(service.AdvisoryUploadTooLarge):
        advisory_import_start(actor=ACTOR, upload=SimpleUploadedFile("a.json", data))
    assert AdvisoryImport.objects.count() == 1


def test_a_mirror_url_is_fetched_over_http(import_roots, rematch_calls, settings, tmp_path) -> None:
    body = zip_of(good_records(), tmp_path / "all.zip").read_bytes()
    with serve({"/osv/Debian/all.zip": body}) as mirror:
        settings.PORTAL_ADVISORY_MIRRORS = [f"{mirror.base}/osv/"]
        _, result = run(url=f"{mirror.base}/osv/Debian/all.zip")
        assert (result.source_kind, result.imported) == ("url", 6)
        assert mirror.hits == ["/osv/Debian/all.zip"]
        with pytest.raises(ValidationError, match="not under an allowed advisory mirror"):
            advisory_import_start(actor=ACTOR, url=f"{mirror.base}/elsewhere/all.zip")
        # a mirror that is down fails the job with the reason
        job = advisory_import_start(actor=ACTOR, url=f"{mirror.base}/osv/Go/all.zip")
        assert job_execute(job.pk) == "failed"
        assert "HTTP 404" in Job.objects.get(pk=job.pk).error
        # a mirror answering 5xx is tried again later: the job is queued for its next attempt
        job = advisory_import_start(actor=ACTOR, url=f"{mirror.base}/osv/busy.zip")
        assert job_execute(job.pk) == "queued"
        assert Job.objects.get(pk=job.pk).attempts == 1
    assert not any(Path(settings.PORTAL_ADVISORY_UPLOAD_DIR).iterdir())


def test_beat_imports_every_mirror(import_roots, rematch_calls, settings, tmp_path) -> None:
    body = zip_of(good_records(), tmp_path / "all.zip").read_bytes()
    with serve({"/Debian/all.zip": body, "/Go/all.zip": body}) as mirror:
        settings.PORTAL_ADVISORY_MIRRORS = [
            f"{mirror.base}/Debian/all.zip",
            f"{mirror.base}/Go/all.zip",
        ]
        job_ids = import_advisory_mirrors()
        assert len(job_ids) == 2
        assert import_advisory_mirrors() == []  # both still queued: not started twice
        assert [job_execute(pk) for pk in job_ids] == ["succeeded", "succeeded"]
    imports = AdvisoryImport.objects.order_by("pk")
    assert [(i.imported, i.unchanged) for i in imports] == [(6, 0), (0, 6)]


@pytest.mark.parametrize(("mirrors", "scheduled"), [("", False), ("http://m.internal/a.zip", True)])
def test_the_beat_entry_exists_only_with_mirrors(mirrors: str, scheduled: bool) -> None:
    env = {**os.environ, "PORTAL_ADVISORY_MIRRORS": mirrors}
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings');"
        "from django.conf import settings;"
        "print(settings.CELERY_BEAT_SCHEDULE.get('import-advisories'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert ("images.tasks.import_advisory_mirrors" in out) is scheduled


def test_the_command_imports_and_waits(import_roots, rematch_calls, capsys) -> None:
    call_command("import_advisories", str(GOOD), "--wait")
    out = capsys.readouterr().out
    assert "imported 9, unchanged 0, rejected 0, quarantined 0" in out
    call_command("import_advisories", str(FIXTURES / "bad"), "--wait")
    out = capsys.readouterr().out
    assert "rejected 9" in out and "no 'modified'" in out
    call_command("import_advisories", str(GOOD))
    assert "queued: job #" in capsys.readouterr().out
    assert Job.objects.filter(kind="images.advisory_import", state="queued").count() == 1
    with pytest.raises(CommandError, match="outside the allowed import roots"):
        call_command("import_advisories", "/etc/passwd", "--wait")
    assert AuditEntry.objects.filter(action="advisory_import.start").count() == 3


def test_queries_do_not_grow_with_the_records(
    import_roots, rematch_calls, django_assert_max_num_queries
) -> None:
    """Batches: a 1,000-record zip costs tens of queries, not thousands."""
    archive = zip_of(generated_records(1000), import_roots / "k.zip")
    record = AdvisoryImport.objects.create(source_kind="path", source=str(archive))
    with django_assert_max_num_queries(40):
        summary = service.advisory_import_run(advisory_import=record, log=lambda line: None)
    assert summary["imported"] == 1000
    assert AffectedPackage.objects.count() == 2000 and AdvisoryAlias.objects.count() == 2000


def test_progress_counts_the_records_of_a_zip(import_roots, rematch_calls) -> None:
    archive = zip_of(generated_records(1000), import_roots / "k.zip")
    job, result = run(path=str(archive))
    assert result.imported == 1000
    assert "500 of 1000 records read" in job.log and "1000 of 1000 records read" in job.log
    assert "re-matching 1994 changed packages" in job.log  # 997 names × Debian:11 and :12


def test_a_cancelled_import_is_finished_with_the_reason_and_its_upload_removed(
    import_roots, settings
) -> None:
    from portal.jobs import job_cancel

    job = advisory_import_start(actor=ACTOR, upload=SimpleUploadedFile("a.json", b"{}"))
    stored = Path(job.params["stored_path"])
    assert stored.is_file()
    job_cancel(job=job, actor=ACTOR)
    record = AdvisoryImport.objects.get(job=job)
    assert record.finished_at is not None
    assert record.errors[-1]["record"] == "(job)" and "cancelled" in record.errors[-1]["reason"]
    assert not stored.exists() and not stored.parent.exists()
    assert job_execute(job.pk) == "skipped"


def test_a_cancel_mid_import_keeps_whole_records_and_rematches_them(
    import_roots, rematch_calls
) -> None:
    from portal.jobs import JobCancelled

    archive = zip_of(generated_records(1200), import_roots / "k.zip")
    record = AdvisoryImport.objects.create(source_kind="path", source=str(archive))

    def cancel() -> None:
        raise JobCancelled

    with pytest.raises(JobCancelled):
        service.advisory_import_run(
            advisory_import=record, log=lambda line: None, check_cancelled=cancel
        )
    record.refresh_from_db()
    assert record.imported == 500 == Advisory.objects.count()  # the first batch, whole
    assert AffectedPackage.objects.count() == 1000
    assert record.errors == [{"record": "(job)", "reason": "cancelled after 500 records"}]
    assert record.finished_at is not None
    assert rematch_calls == [sorted({tuple(k) for k in record.changed_keys})]
    assert len(rematch_calls[0]) == 2 * 500


def test_a_failing_rematch_fails_the_job_but_keeps_the_counts(import_roots, monkeypatch) -> None:
    def broken(*, keys: Any) -> dict[str, Any]:
        raise RuntimeError("matcher down")

    monkeypatch.setattr(findings, "findings_rematch", broken)
    job = advisory_import_start(actor=ACTOR, path=str(GOOD / "go"))
    assert job_execute(job.pk) == "failed"
    record = AdvisoryImport.objects.get(job=job)
    assert record.imported == 1 and record.finished_at is not None
    assert record.changed_keys == [["Go", "golang.org/x/net"], ["Go", "stdlib"]]
    assert "matcher down" in record.errors[-1]["reason"]
