"""What the pages' fixed costs were cut with keeps its behaviour: QuickSelect writes what
Django's select.html writes, a labelled choice still validates against its whole queryset,
the cached navigation follows the page, the language and the admin flag, and the session
user's roles are read in one query a request."""

import pytest
from django import forms
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from django.utils.translation import gettext

from deployments.forms import ReleaseCreateForm
from portal.forms import QuickSelect
from portal.querysets import page_values
from tests.deployments.factories import DeploymentFactory
from tests.i18n_support import compile_catalog
from tests.images.factories import BaseImageFactory, ImageVersionFactory

CHOICES = [
    ("", "(keep <the> current)"),
    (1, "a & b"),
    ("group", [(2, "two"), (3, 'th"ree')]),
    (4, "four"),
]


@pytest.mark.parametrize("value", ["", 1, 3, None, "4", [2, 4]])
@pytest.mark.parametrize("attrs", [None, {"class": "x", "required": True, "disabled": False}])
def test_quick_select_writes_what_djangos_select_writes(value, attrs):
    expected = forms.Select(choices=CHOICES, attrs=attrs).render("f", value, {"id": "id_f"})
    got = QuickSelect(choices=CHOICES, attrs=attrs).render("f", value, {"id": "id_f"})
    assert got == expected
    assert "&lt;the&gt;" in got and "th&quot;ree" in got  # labels escaped, as the template does


@pytest.mark.django_db
def test_release_form_lists_labels_and_refuses_a_choice_outside_its_queryset():
    deployment = DeploymentFactory()
    form = ReleaseCreateForm(deployment=deployment)
    html = str(form["runtime_version"])
    runtime = deployment.runtime_version
    assert f'<option value="{runtime.pk}">{runtime.base_image.name}:{runtime.tag} (' in html
    assert "(keep the current runtime image)" in html
    other_kind = ImageVersionFactory(base_image=BaseImageFactory(name="build/gcc", kind="build"))
    refused = ReleaseCreateForm({"runtime_version": other_kind.pk}, deployment=deployment)
    assert not refused.is_valid()
    assert "runtime_version" in refused.errors
    kept = ReleaseCreateForm({"runtime_version": runtime.pk}, deployment=deployment)
    assert kept.is_valid(), kept.errors
    assert kept.cleaned_data["runtime_version"] == runtime
    assert kept.cleaned_data["runtime_version"].registry_id == runtime.registry_id


@pytest.mark.django_db
def test_cached_navigation_follows_the_page_the_language_and_the_admin_flag(
    client, developer, admin_user, settings
):
    client.force_login(developer)
    jobs = client.get("/jobs/").content.decode()
    assert '<a href="/jobs/" aria-current="page">Jobs</a>' in jobs
    assert 'href="/audit/"' not in jobs  # the admin's links stay the admin's
    catalog = client.get("/base-images/").content.decode()
    assert '<a href="/jobs/" >Jobs</a>' in catalog
    assert 'aria-current="page">Catalog</a>' in catalog
    client.force_login(admin_user)
    assert 'href="/audit/"' in client.get("/jobs/").content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    with translation.override("zh-hans"):
        jobs_zh, catalog_zh = gettext("Jobs"), gettext("Catalog")
    assert jobs_zh != "Jobs"
    page = client.get("/jobs/").content.decode()
    assert f'aria-current="page">{jobs_zh}</a>' in page and catalog_zh in page
    assert 'data-language="en-us"' in page or 'data-language="en"' in page


@pytest.mark.django_db
def test_a_page_reads_the_session_users_memberships_once(client, admin_user):
    client.force_login(admin_user)
    client.get("/jobs/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/jobs/").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "portal_membership"' in q["sql"]]
    assert len(reads) == 1, reads


@pytest.mark.django_db
def test_the_release_forms_empty_choices_follow_the_language():
    compile_catalog()
    deployment = DeploymentFactory()
    with translation.override("zh-hans"):
        form = ReleaseCreateForm(deployment=deployment)
        html = str(form["binary_version"]) + str(form["runtime_version"])
    assert "（保留当前的二进制）" in html and "（保留当前的运行时镜像）" in html
    assert "keep the current" not in html


def test_page_values_pages_querysets_only():
    page = Paginator(["a", "b"], 1).get_page(1)
    with pytest.raises(TypeError, match="page_values pages querysets, not list"):
        page_values(page, "id")
