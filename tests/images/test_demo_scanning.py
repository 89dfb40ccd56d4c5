"""The scanning half of the `make run` demo (start_demo_jobs): the advisory import, the scans
of versions never scanned, and the request whose candidate the gate blocks.

"""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command

from images import demo
from images.choices import RequestState, ScanState
from images.models import Advisory, AdvisoryImport, BaseImage, ImageRequest
from portal.models import Job
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> None:
    demo.seed_demo()


def test_the_demo_advisory_ids_are_the_shipped_files() -> None:
    assert "DSA-9901-1" in demo.DEMO_ADVISORY_IDS
    assert len(demo.DEMO_ADVISORY_IDS) == 6
    assert demo.DEMO_ADVISORIES_DIR.is_dir()


def test_the_advisory_import_is_started_with_the_demo_directory(seeded: None) -> None:
    job, what = demo.demo_advisories_import()
    assert job is not None and job.kind == "images.advisory_import", what
    advisory_import = AdvisoryImport.objects.get(pk=job.params["import_id"])
    assert advisory_import.source == str(demo.DEMO_ADVISORIES_DIR)


def test_the_advisory_import_is_skipped_once_every_record_is_there(seeded: None) -> None:
    records = {p.stem: json.loads(p.read_text()) for p in demo.DEMO_ADVISORIES_DIR.glob("*.json")}
    *first, last = sorted(records)
    for osv_id in first:
        Advisory.objects.create(osv_id=osv_id, modified=records[osv_id]["modified"], record={})
    skipped = (None, "all 6 demo advisories already imported")
    assert demo.demo_advisories_import() != skipped
    older = Advisory.objects.create(osv_id=last, modified="2020-01-01T00:00:00Z", record={})
    assert demo.demo_advisories_import() != skipped  # an edited file is imported again
    Advisory.objects.filter(pk=older.pk).update(modified=records[last]["modified"])
    assert demo.demo_advisories_import() == skipped


def test_only_unscanned_demo_versions_are_scanned(seeded: None) -> None:
    runtime = BaseImage.objects.get(name="runtime/debian")
    gcc = BaseImage.objects.get(name="build/gcc")
    never = ImageVersionFactory(base_image=runtime, registry=runtime.registry, tag="12")
    ImageVersionFactory(
        base_image=gcc, registry=gcc.registry, tag="12", scan_state=ScanState.SCANNED
    )
    other = BaseImage.objects.create(
        name="team/other", kind="runtime", owner_team=runtime.owner_team
    )
    ImageVersionFactory(base_image=other, registry=runtime.registry, tag="1")
    started = demo.demo_scans_start()
    assert [reference for reference, _, _ in started] == ["runtime/debian:12"]
    (_, job, what) = started[0]
    assert job.kind == "images.scan" and str(never.pk) in str(job.params), what


def test_the_demo_request_is_approved_once_and_builds_a_new_runtime_tag(seeded: None) -> None:
    reference, job, what = demo.demo_request_start()
    assert reference == "runtime/debian:12-curl"
    request = ImageRequest.objects.get(name="runtime/debian", tag="12-curl")
    assert request.state == RequestState.APPROVED
    assert request.team.name == "platform"
    assert request.reviewed_by.username == "platform-admin"
    assert job.kind == "images.build" and job.params == {"request_id": request.pk}
    assert what == f"request #{request.pk} approved, build started"
    recipe = yaml.safe_load(request.recipe)
    assert recipe["suite"] == "bookworm" and "curl" in recipe["packages"]
    # A second start leaves it as it is, whatever state the gate left it in.
    ImageRequest.objects.filter(pk=request.pk).update(state=RequestState.SCANNING)
    assert demo.demo_request_start() == (reference, None, f"request #{request.pk} is scanning")
    assert Job.objects.filter(kind="images.build").count() == 1


def test_the_demo_request_needs_the_seeded_catalog() -> None:
    assert demo.demo_request_start()[2] == "not requested (run seed_demo first)"
    assert not ImageRequest.objects.exists()


def test_start_demo_jobs_reports_each_step(seeded: None, capsys: pytest.CaptureFixture) -> None:
    call_command("start_demo_jobs")
    out = capsys.readouterr().out
    assert "Demo advisories: " in out
    assert "Demo image runtime/debian:12: started (job #" in out
    assert "Demo request runtime/debian:12-curl: request #" in out
    assert "Registry sync job #" in out
    assert out.index("Demo advisories") < out.index("Demo image")  # imported before any scan
