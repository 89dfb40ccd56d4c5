"""Keyset (cursor) pages of the jobs list and the audit log: complete walks in both
directions, bad cursors refused, no log in the list, constant queries at any page size."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.db import connection
from django.utils import timezone

from portal.keyset import (
    CursorError,
    _after,
    decode_cursor,
    encode_cursor,
    keyset_paginate,
)
from portal.models import AuditEntry, Job

pytestmark = pytest.mark.django_db

JOB_SCOPES = ["images:read"]
LOG = "compiling… " * 3000  # 33 KB: a list row must not carry it


def _jobs(team, n: int) -> list[Job]:
    now = timezone.now()
    jobs = Job.objects.bulk_create(
        Job(kind="images.build", team=team, log=LOG, step=f"step {i}") for i in range(n)
    )
    # Two share a timestamp: the id breaks the tie, the walk still sees each once.
    for i, job in enumerate(jobs):
        Job.objects.filter(pk=job.pk).update(created_at=now - dt.timedelta(seconds=i // 2))
    return list(Job.objects.order_by("-created_at", "-id"))


def _walk(client, url: str, params: dict) -> tuple[list[int], list[dict]]:
    seen: list[int] = []
    bodies = []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        bodies.append(body)
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            return seen, bodies
        response = client.get(body["next"])


def test_job_api_walks_every_job_once_forward_and_back(token_client, service_team):
    jobs = _jobs(service_team, 23)
    client = token_client(service_team, JOB_SCOPES)
    seen, bodies = _walk(client, "/api/v1/jobs/", {"page_size": 5})
    assert seen == [j.pk for j in jobs]
    assert len(bodies) == 5 and bodies[0]["previous"] is None
    assert all("count" not in b for b in bodies)
    assert all("log_tail" not in row for b in bodies for row in b["results"])
    # back from the third page: the second page again
    previous = client.get(bodies[2]["previous"]).json()
    assert [r["id"] for r in previous["results"]] == [r["id"] for r in bodies[1]["results"]]
    newest = client.get(client.get(previous["previous"]).json()["next"]).json()
    assert [r["id"] for r in newest["results"]] == [r["id"] for r in bodies[1]["results"]]
    # the job's own URL keeps its log tail
    assert client.get(f"/api/v1/jobs/{jobs[0].pk}/").json()["log_tail"].endswith("compiling… ")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-base64!"}, "cursor"),
        ({"cursor": "eyJrIjpbMV0sInIiOmZhbHNlfQ"}, "cursor"),  # one key for two fields
        ({"cursor": "eyJrIjpbIm5vdC1hLWRhdGUiLDFdLCJyIjpmYWxzZX0"}, "cursor"),  # bad date
        ({"cursor": "x" * 2000}, "cursor"),
        ({"page": "2"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
    ],
)
def test_job_api_refuses_a_bad_cursor_page_or_size(token_client, service_team, params, field):
    _jobs(service_team, 3)
    response = token_client(service_team, JOB_SCOPES).get("/api/v1/jobs/", params)
    assert response.status_code == 400
    assert field in response.json()["errors"] or field in str(response.json())


def test_job_api_list_queries_do_not_grow_with_the_page(
    token_client, service_team, django_assert_max_num_queries
):
    _jobs(service_team, 60)
    client = token_client(service_team, JOB_SCOPES)
    client.get("/api/v1/jobs/")
    for size in (5, 50):
        with django_assert_max_num_queries(3):  # token, (memberships), page
            response = client.get("/api/v1/jobs/", {"page_size": size})
        assert len(response.json()["results"]) == size
        with django_assert_max_num_queries(3):
            assert client.get(response.json()["next"]).status_code == 200


def test_jobs_page_has_no_log_and_walks_by_cursor(
    client, developer, service_team, django_assert_max_num_queries
):
    jobs = _jobs(service_team, 30)
    client.force_login(developer)
    with django_assert_max_num_queries(8):
        page = client.get("/jobs/", {"kind": "images.build"}).content.decode()
    assert "compiling" not in page and page.count("/jobs/") >= 25
    older = re.search(r'href="\?([^"]*cursor=[^"]+)" rel="next"', page)
    assert older and "kind=images.build" in older[1]
    with django_assert_max_num_queries(8):
        second = client.get("/jobs/?" + html.unescape(older[1])).content.decode()
    assert f'href="/jobs/{jobs[-1].pk}/"' in second and 'rel="next"' not in second
    assert client.get("/jobs/", {"cursor": "garbage"}).status_code == 200  # first page


def test_audit_page_walks_200_entries_in_constant_queries(
    client, admin_user, django_assert_max_num_queries
):
    AuditEntry.objects.bulk_create(
        AuditEntry(actor_repr="alice", action=f"service.create.{i}") for i in range(200)
    )
    client.force_login(admin_user)
    url, seen = "/audit/", 0
    while url:
        with django_assert_max_num_queries(8):
            page = client.get(url).content.decode()
        seen += len(re.findall(r"<code>service\.create\.\d+</code>", page))
        older = re.search(r'href="(\?[^"]*cursor=[^"]+)" rel="next"', page)
        url = "/audit/" + html.unescape(older[1]) if older else ""
    assert seen == 200
    assert "in all" not in page  # no COUNT(*) of the log


def test_cursor_round_trip_and_mismatch():
    job = Job(pk=7, created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    cursor = encode_cursor(job, ("-created_at", "-id"), reverse=True)
    assert decode_cursor(cursor, ("-created_at", "-id")) == (["2026-01-02T03:04:05+00:00", 7], True)
    with pytest.raises(CursorError):
        decode_cursor(cursor, ("-id",))
    with pytest.raises(CursorError):
        keyset_paginate(
            Job.objects.all(),
            ("-id",),
            size=5,
            cursor=encode_cursor(job, ("-id", "kind"), reverse=False),
        )


def test_a_one_way_ordering_pages_by_one_row_comparison(service_team):
    """`(created_at, id) < (x, y)`: the index of the ordering starts at the cursor, however
    many rows share its first key (SQLite gets Django's expansion of the same comparison);
    an ordering whose fields run both ways keeps the bounded OR form."""
    jobs = _jobs(service_team, 6)
    first = keyset_paginate(Job.objects.all(), ("-created_at", "-id"), size=2, cursor=None)
    keys, _ = decode_cursor(first.next_cursor, ("-created_at", "-id"))
    sql = str(Job.objects.filter(_after(("-created_at", "-id"), keys, reverse=False)).query)
    if connection.features.supports_tuple_lookups:
        assert '("portal_job"."created_at", "portal_job"."id") <' in sql
    walked = []
    cursor = None
    while True:
        page = keyset_paginate(Job.objects.all(), ("-created_at", "-id"), size=2, cursor=cursor)
        walked += [j.pk for j in page]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert walked == [j.pk for j in jobs]
    mixed = keyset_paginate(Job.objects.all(), ("-created_at", "id"), size=4, cursor=None)
    rest = keyset_paginate(
        Job.objects.all(), ("-created_at", "id"), size=4, cursor=mixed.next_cursor
    )
    assert len({j.pk for j in [*mixed, *rest]}) == 6
