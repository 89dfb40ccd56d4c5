"""The API lists served from `values()` rows (`portal.api.rows`) answer exactly what DRF's
serializers answer from model instances: the same bytes, page after page."""

from __future__ import annotations

import json
import re

import pytest

from deployments.api.serializers import (
    BinaryVersionSerializer,
    DeploymentSerializer,
    EnvironmentSerializer,
    ReleaseSerializer,
    ServiceSerializer,
)
from deployments.models import BinaryVersion, Release
from deployments.selectors import (
    binary_version_list,
    deployment_list,
    environment_list,
    release_list,
    service_list,
)
from images.api.serializers import BaseImageSerializer, ImageVersionDetailSerializer
from images.models import ImageVersion
from images.selectors import base_image_list
from portal.api import rows
from portal.api.serializers import JobListSerializer
from portal.models import Job
from tests.deployments.test_flat_lists import READ_ALL, world  # noqa: F401 - the fixture
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied(world, make_token, service_team):  # noqa: F811 - the imported fixture
    """What the rows must get right: a rollback, a token's release and upload, a CD status,
    a binary deployed nowhere."""
    from portal.models import ApiToken

    make_token(service_team, ["deployments:write"])
    token = ApiToken.objects.latest("id")
    first = Release.objects.order_by("id").first()
    last = Release.objects.order_by("id").last()
    assert first is not None and last is not None
    Release.objects.filter(pk=last.pk).update(
        rollback_of=first, created_by_token=token, status="healthy", status_note="ok"
    )
    ImageVersionFactory(base_image=world["runtime"].base_image, tag="next")
    BaseImageFactory(registry=None, replacement=world["runtime"].base_image)
    Job.objects.create(kind="images.build", created_by_token=token, team=service_team)
    Job.objects.create(
        kind="images.build", created_by=service_team.members.first(), team=service_team
    )
    Job.objects.create(kind="images.scan", params={"x": 1}, error="boom", team=service_team)
    binary = BinaryVersion.objects.order_by("id").first()
    assert binary is not None
    BinaryVersion.objects.filter(pk=binary.pk).update(uploaded_by_token=token, uploaded_by=None)
    return world


def _pages(client, url: str) -> list[bytes]:
    bodies = []
    response = client.get(url)
    while True:
        assert response.status_code == 200, response.content
        bodies.append(response.content)
        following = response.json().get("next")
        if not following:
            return bodies
        response = client.get(following)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/releases/?page_size=7",
        "/api/v1/releases/?page_size=2&deployment={deployment}",
        "/api/v1/deployments/{deployment}/releases/?page_size=2",
        "/api/v1/services/?page_size=5",
        "/api/v1/services/svc-01/binaries/?page_size=2",
        "/api/v1/binaries/?page_size=10",
        "/api/v1/binaries/?page_size=10&state=active",
        "/api/v1/deployments/?page_size=10",
        "/api/v1/environments/?page_size=1",
        "/api/v1/jobs/?page_size=2",
        "/api/v1/image-versions/?page_size=1",
        "/api/v1/base-images/?page_size=1",
    ],
)
def test_row_lists_answer_what_the_serializers_answer(
    token_client, service_team, varied, settings, url
):
    client = token_client(service_team, READ_ALL)
    url = url.format(deployment=varied["deployments"][-1].pk)
    settings.PORTAL_API_ROWS = False
    expected = _pages(client, url)
    settings.PORTAL_API_ROWS = True
    assert _pages(client, url) == expected
    assert len(expected) >= 2


@pytest.mark.parametrize(
    ("serializer", "queryset"),
    [
        (ReleaseSerializer, release_list),
        (ServiceSerializer, service_list),
        (BinaryVersionSerializer, binary_version_list),
        (DeploymentSerializer, deployment_list),
        (EnvironmentSerializer, environment_list),
        (JobListSerializer, Job.objects.all),
        (ImageVersionDetailSerializer, ImageVersion.objects.all),
        (BaseImageSerializer, lambda: base_image_list(scans=False)),
    ],
)
def test_the_hot_lists_are_served_from_rows(serializer, queryset):
    """Each of these serializers reads every field from a row (a new field that cannot
    would silently send its list back to model instances)."""
    qs = queryset()
    assert rows._plan(serializer, qs.model, frozenset(qs.query.annotations)) is not None


def test_a_keyset_page_of_many_joins_picks_its_ids_first(token_client, service_team, varied):
    """The releases page joins eight tables: its ordered LIMIT reads ids alone, and the rows
    are read by those ids (PostgreSQL planned the joined, sorted LIMIT 20 times longer than it
    ran it). The body is checked against DRF's by the test above."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = token_client(service_team, READ_ALL)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/releases/?page_size=3")
    assert response.status_code == 200
    releases = [q["sql"] for q in queries.captured_queries if '"deployments_release"' in q["sql"]]
    limited = [sql for sql in releases if re.search(r"ORDER BY [^)]* LIMIT \d+$", sql)]
    assert len(limited) == 1
    assert limited[0].split(" FROM ")[0] == 'SELECT "deployments_release"."id" AS "id"'
    rows = [sql for sql in releases if '"deployments_release"."id" IN (' in sql]
    assert (
        len(rows) == 1
        and rows[0].count("JOIN") >= 5
        and not rows[0].endswith(tuple(f"LIMIT {n}" for n in range(1, 10)))
    )
    assert [r["id"] for r in response.json()["results"]] == sorted(
        (r["id"] for r in response.json()["results"]), reverse=True
    )


def test_a_keyset_page_of_few_joins_is_one_query(token_client, service_team, varied):
    """The jobs list joins little: one ordered LIMIT, no second query for its rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = token_client(service_team, READ_ALL)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/jobs/?page_size=2")
    assert response.status_code == 200
    jobs = [q["sql"] for q in queries.captured_queries if 'FROM "portal_job"' in q["sql"]]
    assert len(jobs) == 1 and re.search(r"LIMIT \d+$", jobs[0])


def test_an_annotated_list_reads_ids_first_only_past_its_first_page(
    token_client, service_team, varied
):
    """Page 1 skips no row, so its rows (annotations and all) are one query; a later page
    picks its ids first so that the OFFSET's rows compute no annotation."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = token_client(service_team, READ_ALL)

    def service_queries(url: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].startswith('SELECT "deployments_service"."id"')
        ]

    first = service_queries("/api/v1/services/?page_size=2")
    assert len(first) == 1 and re.search(r"LIMIT 3$", first[0])  # one more: is there a next?
    later = service_queries("/api/v1/services/?page_size=2&page=2")
    assert len(later) == 2
    assert later[0].split(" FROM ")[0] == 'SELECT "deployments_service"."id" AS "id"'
    assert re.search(r"LIMIT 3 OFFSET 2$", later[0]) and " IN (" in later[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/releases/?page_size=7",
        "/api/v1/deployments/{deployment}/releases/?page_size=2",
        "/api/v1/deployments/?page_size=10",
    ],
)
def test_rows_read_with_joins_as_written_answer_the_same(
    token_client, service_team, varied, settings, url
):
    """Outside a test's transaction the rows by id are read with PostgreSQL's joins as
    written (`portal.sql_hints`): the same bytes as DRF's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.sql_hints import HINT

    client = token_client(service_team, READ_ALL)
    url = url.format(deployment=varied["deployments"][-1].pk)
    settings.PORTAL_API_ROWS = False
    expected = _pages(client, url)
    settings.PORTAL_API_ROWS = True
    with CaptureQueriesContext(connection) as queries:
        assert _pages(client, url) == expected
    hinted = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(HINT)]
    assert bool(hinted) == (connection.vendor == "postgresql")
    assert all(" IN (" in sql for sql in hinted)


def test_a_numbered_page_of_many_joins_counts_its_table_and_picks_its_ids_first(
    token_client, service_team, varied
):
    """The deployments list joins seven tables: its count joins only what the reader's
    filter needs (the services, for a team's token), its ordered page the two tables its
    order needs, and the rows come by id."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = token_client(service_team, READ_ALL)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/deployments/?page_size=2")
    assert response.status_code == 200 and response.json()["count"] >= 3
    sqls = [q["sql"] for q in queries.captured_queries if '"deployments_deployment"' in q["sql"]]
    counts = [sql for sql in sqls if "COUNT(*)" in sql]
    assert len(counts) == 1 and counts[0].count("JOIN") == 1
    assert 'JOIN "deployments_service"' in counts[0]
    limited = [sql for sql in sqls if re.search(r"LIMIT 3$", sql)]  # one more: a next page?
    assert len(limited) == 1
    assert limited[0].split(" FROM ")[0] == 'SELECT "deployments_deployment"."id" AS "id"'
    assert limited[0].count("JOIN") == 2
    assert any('"deployments_deployment"."id" IN (' in sql for sql in sqls)


def test_json_columns_and_times_read_from_rows_are_what_drf_shows(
    token_client, service_team, varied, settings
):
    """A JSON column is read as its text and decoded once a page per distinct value; a time
    is formatted without its field. Both give DRF's bytes: shared and distinct values, JSON
    null, non-ASCII text, and a current timezone that is not UTC."""
    from django.db.models import JSONField, Value
    from django.utils import timezone

    from deployments.models import Deployment

    first, second, third = varied["deployments"][:3]
    shared = [{"name": "GREETING", "value": "你好 ü"}]
    Deployment.objects.filter(pk=first.pk).update(
        env=shared, resources={"limits": {"cpu": "1"}}, args=Value(None, JSONField()), ports=[8080]
    )
    Deployment.objects.filter(pk=second.pk).update(env=shared, args=["--x", 2.5])
    Deployment.objects.filter(pk=third.pk).update(command=["/bin/app"], replicas=3)
    client = token_client(service_team, READ_ALL)
    url = "/api/v1/deployments/?page_size=50"
    with timezone.override("Asia/Shanghai"):
        settings.PORTAL_API_ROWS = False
        expected = _pages(client, url)
        settings.PORTAL_API_ROWS = True
        got = _pages(client, url)
    assert got == expected
    body = {row["id"]: row for row in json.loads(got[0])["results"]}
    assert body[first.pk]["env"] == body[second.pk]["env"] == shared
    assert body[first.pk]["args"] is None and body[second.pk]["args"] == ["--x", 2.5]
    assert body[third.pk]["command"] == ["/bin/app"]
    assert body[first.pk]["created_at"].endswith("+08:00")


def test_a_json_column_is_read_as_text_only_when_shown_as_it_is():
    """Only the list's own plain JSON columns shown by a plain `JSONField` are read as text
    (`_json_text`): a binary field, a custom decoder or a related table's column are not."""
    from rest_framework import serializers

    from deployments.models import Deployment

    plain = serializers.JSONField()
    assert rows._json_text(Deployment, plain, "env")
    assert not rows._json_text(Deployment, serializers.JSONField(binary=True), "env")
    assert not rows._json_text(Deployment, serializers.CharField(), "env")
    assert not rows._json_text(Deployment, plain, "service__name")
    assert not rows._json_text(Deployment, plain, "mode")
    columns = rows._plan(DeploymentSerializer, Deployment, frozenset({"latest_release"}))
    assert columns is not None
    kinds = {column.name: column.kind for column in columns}
    assert {name for name, kind in kinds.items() if kind == "json"} == {
        "command",
        "args",
        "env",
        "ports",
        "resources",
    }
