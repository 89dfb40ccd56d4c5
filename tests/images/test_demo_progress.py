"""The first run's demo progress: what the banner shows and the console lines of `make run`."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from images.demo import DEMO_BUILDS
from images.demo_progress import demo_progress_compute
from images.models import BaseImage
from images.services.builds import build_idempotency_key
from portal.models import Job
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db


def _jobs(state: str = "running") -> None:
    for build in DEMO_BUILDS:
        Job.objects.create(
            kind="images.build",
            state=state,
            idempotency_key=build_idempotency_key(build.image, build.tag),
        )


def test_no_demo_no_banner(developer, demo_catalog):
    cache.clear()
    client = Client()
    client.force_login(developer)
    assert demo_progress_compute() == []
    assert 'id="demo-banner"' not in client.get("/base-images/").content.decode()


def test_banner_for_every_user_until_all_ready(developer, demo_catalog):
    cache.clear()
    _jobs()
    client = Client()
    client.force_login(developer)  # a service-team developer sees it too
    assert 'id="demo-banner"' in client.get("/base-images/").content.decode()
    with_query_budget = demo_progress_compute()
    assert [p.state for p in with_query_budget] == ["running"] * len(DEMO_BUILDS)
    for build in DEMO_BUILDS:
        ImageVersionFactory(base_image=BaseImage.objects.get(name=build.image), tag=build.tag)
    cache.clear()
    assert client.get("/demo-progress/").content == b""
    assert 'id="demo-banner"' not in client.get("/base-images/").content.decode()


def test_watch_demo_prints_a_line_per_image(demo_catalog):
    _jobs()
    for build in DEMO_BUILDS[:-1]:
        ImageVersionFactory(base_image=BaseImage.objects.get(name=build.image), tag=build.tag)
    last = DEMO_BUILDS[-1]
    Job.objects.filter(idempotency_key=build_idempotency_key(last.image, last.tag)).update(
        state="failed"
    )
    out = io.StringIO()
    call_command("watch_demo", interval=0.01, timeout=5, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(DEMO_BUILDS)
    assert lines[0].startswith(f"  Demo image ready: {DEMO_BUILDS[0].image}:{DEMO_BUILDS[0].tag}")
    assert "build failed" in lines[-1]
