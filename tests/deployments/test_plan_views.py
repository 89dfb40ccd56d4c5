"""Plan pages (list, plan, live partial, actions), the OS-migration wizard and the rebase form.

Plans and items are written with the ORM here: the pages read the models, and the actions
call the plan engine (`deployments.services.plans`) by name. The tests that need the engine
itself are skipped with a reason while it is not in the tree (it is written in parallel).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from deployments.models import Plan, PlanItem
from deployments.views import plans as plan_views
from portal.choices import Role
from portal.models import Team
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db

FINDING = {
    "key": "symbol-version-missing",
    "severity": "error",
    "blocking": True,
    "title": "GLIBC_2.38 is not defined by the target's libc.so.6",
    "detail": "The binary needs GLIBC_2.38; runtime/debian:12 defines up to GLIBC_2.36.",
    "remediation": "Rebuild in build/gcc:12 (glibc <= 2.36).",
}


def _engine_has(name: str) -> Any:
    """The engine's function `name` (it must exist: the views call it by that name)."""
    return getattr(importlib.import_module("deployments.services.plans"), name)


@pytest.fixture
def users(make_user: Any, platform_team: Team, service_team: Team) -> dict[str, Any]:
    other = Team.objects.create(name="ledger-team")
    return {
        "admin": make_user("alice-admin", platform_team, Role.PLATFORM_ADMIN),
        "dev": make_user("dave-dev", service_team, Role.DEVELOPER),
        "other": make_user("olga-other", other, Role.MAINTAINER),
        "outsider": make_user("nina-nobody", Team.objects.create(name="empty"), Role.MAINTAINER),
    }


def _login(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def plan(users: dict[str, Any], service_team: Team) -> Plan:
    """A draft rebase plan: payments-api (payments, canary, compatible) and ledger (the other
    team's, wave 1, blocked with a finding)."""
    old = ImageVersionFactory(tag="12", state="superseded")
    new = ImageVersionFactory(base_image=old.base_image, tag="12-p1")
    old.superseded_by = new
    old.save()
    other_team = Team.objects.get(name="ledger-team")
    dev_env = EnvironmentFactory(name="dev", namespace="payments-dev")
    mine = DeploymentFactory(
        service=ServiceFactory(name="payments-api", team=service_team),
        environment=dev_env,
        runtime_version=old,
    )
    theirs = DeploymentFactory(
        service=ServiceFactory(name="ledger", team=other_team), runtime_version=old, mode="image"
    )
    plan = Plan.objects.create(
        kind="rebase", from_version=old, to_version=new, created_by=users["admin"]
    )
    PlanItem.objects.create(
        plan=plan,
        deployment=mine,
        from_version=old,
        target_version=new,
        verdict="compatible",
        wave=0,
    )
    PlanItem.objects.create(
        plan=plan,
        deployment=theirs,
        from_version=old,
        target_version=new,
        verdict="incompatible",
        findings=[FINDING],
        state="blocked",
        wave=1,
    )
    return plan


def test_list_shows_plans_with_counts_per_viewer(client: Client, users: dict, plan: Plan) -> None:
    page = _login(client, users["admin"]).get("/plans/").content.decode()
    assert f'href="/plans/{plan.pk}/"' in page
    assert "runtime/image" in page and ":12 → " in page and ":12-p1" in page
    assert "1 pending" in page and "1 blocked" in page
    assert "alice-admin" in page and 'id="new-migration"' in page
    dev = _login(Client(), users["dev"]).get("/plans/").content.decode()
    assert f'href="/plans/{plan.pk}/"' in dev
    assert "1 pending" in dev and "blocked" not in dev.split('id="plan-table"')[1]
    assert 'id="new-migration"' not in dev
    outsider = _login(Client(), users["outsider"]).get("/plans/").content.decode()
    assert "No plans yet" in outsider and f"/plans/{plan.pk}/" not in outsider


def test_list_filters_survive_pagination_in_constant_queries(
    client: Client, users: dict, plan: Plan, django_assert_max_num_queries: Any
) -> None:
    for n in range(24):
        copy = Plan.objects.create(
            kind="migration" if n % 2 else "rebase",
            to_version=plan.to_version,
            state="completed" if n % 3 == 0 else "draft",
            selector={"base_image_id": plan.from_version.base_image_id, "team": "payments"},
        )
        PlanItem.objects.create(
            plan=copy,
            deployment=plan.items.first().deployment,
            from_version=plan.from_version,
            target_version=plan.to_version,
            verdict="unknown",
        )
    _login(client, users["admin"])
    with django_assert_max_num_queries(10):
        response = client.get("/plans/", {"kind": "migration", "page_size": 10})
    page = response.content.decode()
    assert page.count("<td>OS migration</td>") == 10 and "<td>Rebase</td>" not in page
    assert "kind=migration" in page and "page=2" in page  # the next link keeps the filter
    assert "team payments" in page  # a migration's source is its selector
    second = client.get("/plans/", {"kind": "migration", "page_size": 10, "page": 2})
    assert second.content.decode().count("<td>OS migration</td>") == 2
    done = client.get("/plans/", {"state": "completed", "kind": "migration"}).content.decode()
    assert done.count("<td>OS migration</td>") == 4
    none = client.get("/plans/", {"state": "aborted"}).content.decode()
    assert "No plan matches these filters" in none
    assert client.get("/plans/", {"state": "bogus"}).status_code == 200  # ignored, not a 500


def test_plan_page_admin_sees_every_item_findings_and_buttons(
    client: Client, users: dict, plan: Plan, django_assert_max_num_queries: Any
) -> None:
    _login(client, users["admin"])
    with django_assert_max_num_queries(12):
        page = client.get(f"/plans/{plan.pk}/").content.decode()
    assert "payments-api" in page and "ledger" in page
    assert 'id="wave-0"' in page and "Canary" in page and 'id="wave-1"' in page
    assert "badge-compatible" in page and "badge-incompatible" in page
    assert escape(FINDING["title"]) in page and escape(FINDING["remediation"]) in page
    assert "blocking" in page
    actions = page.split('id="plan-actions"')[1].split("</div>")[0]
    assert f'action="/plans/{plan.pk}/apply/"' in actions
    assert f'action="/plans/{plan.pk}/abort/"' in actions
    assert "/pause/" not in actions and "/resume/" not in actions
    assert "csrfmiddlewaretoken" in actions
    assert 'hx-trigger="every' not in page  # a dry run does not poll
    assert "0</strong> of 1 deployments moved" in page  # the blocked one does not count


def test_plan_page_is_scoped_to_the_viewers_services(
    client: Client, users: dict, plan: Plan
) -> None:
    dev = _login(client, users["dev"]).get(f"/plans/{plan.pk}/").content.decode()
    assert "payments-api" in dev and "ledger" not in dev and escape(FINDING["title"]) not in dev
    assert 'id="plan-actions"' not in dev and "/apply/" not in dev
    assert "(your services)" in dev
    other = _login(Client(), users["other"]).get(f"/plans/{plan.pk}/").content.decode()
    assert "ledger" in other and "payments-api" not in other
    assert _login(Client(), users["outsider"]).get(f"/plans/{plan.pk}/").status_code == 404
    assert client.get("/plans/999999/").status_code == 404


def test_item_filters_and_empty_states(client: Client, users: dict, plan: Plan) -> None:
    _login(client, users["admin"])
    blocked = client.get(f"/plans/{plan.pk}/", {"verdict": "incompatible"}).content.decode()
    assert "ledger" in blocked and "payments-api</a>" not in blocked
    assert "No item of this wave on this page with these filters" in blocked
    empty = Plan.objects.create(kind="migration", to_version=plan.to_version)
    page = client.get(f"/plans/{empty.pk}/").content.decode()
    assert "No deployments in this plan" in page


@pytest.mark.parametrize(
    ("state", "buttons", "polls"),
    [
        ("applying", {"pause", "abort"}, True),
        ("paused", {"resume", "abort"}, False),
        ("failed", {"retry-failed", "abort"}, False),
        ("completed", set(), False),
        ("aborted", set(), False),
    ],
)
def test_live_partial_polls_while_applying_and_buttons_follow_the_state(
    client: Client, users: dict, plan: Plan, state: str, buttons: set, polls: bool
) -> None:
    Plan.objects.filter(pk=plan.pk).update(state=state, current_wave=1)
    _login(client, users["admin"])
    partial = client.get(f"/plans/{plan.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith('<div id="plan-live"') and "<html" not in partial
    assert ('hx-trigger="every 2s"' in partial) is polls
    shown = {name for name in plan_views.PLAN_ACTIONS if f"/plans/{plan.pk}/{name}/" in partial}
    assert shown == buttons
    assert (f'data-plan-state="{state}"') in partial


def test_actions_are_for_platform_admins_only(client: Client, users: dict, plan: Plan) -> None:
    for who in ("dev", "other", "outsider"):
        response = _login(Client(), users[who]).post(f"/plans/{plan.pk}/apply/")
        assert response.status_code == 403, who
    _login(client, users["admin"])
    assert client.post(f"/plans/{plan.pk}/explode/").status_code == 404
    assert client.get(f"/plans/{plan.pk}/apply/").status_code == 405
    assert client.post("/plans/999999/apply/").status_code == 404
    anonymous = Client().post(f"/plans/{plan.pk}/apply/")
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    plan.refresh_from_db()
    assert plan.state == "draft"


@pytest.mark.django_db(transaction=True)
def test_apply_calls_the_engine_and_an_illegal_transition_is_refused(
    client: Client, users: dict, plan: Plan
) -> None:
    _engine_has("plan_apply")
    _engine_has("plan_resume")
    _login(client, users["admin"])
    refused = client.post(f"/plans/{plan.pk}/resume/", follow=True).content.decode()
    assert "Resume refused" in refused
    plan.refresh_from_db()
    assert plan.state == "draft"
    response = client.post(f"/plans/{plan.pk}/apply/")
    assert response.status_code == 302 and response["Location"] == f"/plans/{plan.pk}/"
    plan.refresh_from_db()
    assert plan.state in {"applying", "completed"}


@pytest.mark.parametrize(
    ("state", "action", "service", "after"),
    [
        ("applying", "pause", "plan_pause", "paused"),
        ("paused", "resume", "plan_resume", "applying"),
        ("draft", "abort", "plan_abort", "aborted"),
    ],
)
def test_each_button_calls_its_service(
    client: Client, users: dict, plan: Plan, state: str, action: str, service: str, after: str
) -> None:
    _engine_has(service)
    Plan.objects.filter(pk=plan.pk).update(state=state)
    response = _login(client, users["admin"]).post(f"/plans/{plan.pk}/{action}/", follow=True)
    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.state == after, response.content.decode()[:2000]


# --- the OS-migration wizard ---------------------------------------------------------------


@pytest.fixture
def bullseye(users: dict, service_team: Team) -> dict[str, Any]:
    """runtime/debian-11 (3 deployments, replacement runtime/debian) and its target."""
    debian = BaseImageFactory(name="runtime/debian", os_version="12")
    target = ImageVersionFactory(base_image=debian, tag="12")
    ImageVersionFactory(base_image=debian, tag="12-old", state="superseded")
    old = BaseImageFactory(
        name="runtime/debian-11", os_version="11", status="deprecated", replacement=debian
    )
    source = ImageVersionFactory(base_image=old, tag="11")
    for n, env in enumerate(("dev", "staging", "prod")):
        DeploymentFactory(
            service=ServiceFactory(name=f"svc-{n}", team=service_team),
            environment=EnvironmentFactory(name=env, namespace=f"ns-{env}"),
            runtime_version=source,
        )
    return {"image": old, "version": source, "target": target, "debian": debian}


def test_wizard_step_one_lists_runtime_images_with_their_deployment_counts(
    client: Client, users: dict, bullseye: dict, django_assert_max_num_queries: Any
) -> None:
    _login(client, users["admin"])
    with django_assert_max_num_queries(8):
        page = client.get("/migration-plans/new/").content.decode()
    assert "runtime/debian-11</strong> Debian 11 — 3 deployments" in page
    assert "runtime/debian</strong> Debian 12 — 0 deployments" in page
    assert "replacement: runtime/debian" in page and "badge-deprecated" in page
    assert 'id="step-target"' not in page


def test_wizard_step_two_preselects_the_catalogs_replacement(
    client: Client, users: dict, bullseye: dict
) -> None:
    _login(client, users["admin"])
    page = client.get("/migration-plans/new/", {"source": bullseye["image"].pk}).content.decode()
    assert 'id="suggested"' in page and "runtime/debian:12</code>" in page
    assert f'<option value="{bullseye["target"].pk}" selected>' in page
    assert "12-old" not in page  # only approved versions are targets
    assert '<option value="payments">' in page and '<option value="prod">' in page
    assert client.get("/migration-plans/new/", {"source": "x"}).status_code == 200  # step 1


def test_wizard_refuses_bad_input_and_non_admins(
    client: Client, users: dict, bullseye: dict
) -> None:
    for who in ("dev", "other"):
        assert _login(Client(), users[who]).get("/migration-plans/new/").status_code == 403
        assert _login(Client(), users[who]).post("/migration-plans/new/").status_code == 403
    _login(client, users["admin"])
    same = client.post(
        "/migration-plans/new/",
        {"source": bullseye["debian"].pk, "target": bullseye["target"].pk},
    )
    assert same.status_code == 400 and "is a rebase, not a migration" in same.content.decode()
    missing = client.post("/migration-plans/new/", {"source": bullseye["image"].pk})
    assert missing.status_code == 400 and "This field is required" in missing.content.decode()
    unknown = client.post(
        "/migration-plans/new/",
        {"source": bullseye["image"].pk, "target": bullseye["target"].pk, "team": "nope"},
    )
    assert unknown.status_code == 400
    assert client.post("/migration-plans/new/", {"source": "999999"}).status_code == 400
    assert not Plan.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_wizard_preview_creates_the_dry_run_and_shows_it(
    client: Client, users: dict, bullseye: dict
) -> None:
    _engine_has("migration_plan_create")
    _login(client, users["admin"])
    response = client.post(
        "/migration-plans/new/",
        {"source": bullseye["image"].pk, "target": bullseye["target"].pk, "environment": "prod"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = Plan.objects.get()
    assert (plan.kind, plan.state, plan.to_version_id) == (
        "migration",
        "draft",
        bullseye["target"].pk,
    )
    assert response["Location"] == f"/plans/{plan.pk}/"
    assert set(plan.items.values_list("deployment__environment__name", flat=True)) == {"prod"}
    page = client.get(response["Location"]).content.decode()
    assert "svc-2" in page and "Dry run" in page


# --- the rebase form and its link from the base image page ---------------------------------


def test_rebase_form_preselects_the_successor_and_refuses_bad_input(
    client: Client, users: dict, plan: Plan
) -> None:
    old, new = plan.from_version, plan.to_version
    assert _login(Client(), users["dev"]).get("/rebase-plans/new/").status_code == 403
    _login(client, users["admin"])
    page = client.get("/rebase-plans/new/", {"from_version": old.pk}).content.decode()
    assert f'<option value="{old.pk}" selected>' in page
    assert f'<option value="{new.pk}" selected>' in page
    itself = client.post("/rebase-plans/new/", {"from_version": new.pk, "to_version": new.pk})
    assert itself.status_code == 400 and "onto itself" in itself.content.decode()
    bad = client.post(
        "/rebase-plans/new/", {"from_version": old.pk, "to_version": new.pk, "wave_size": "0"}
    )
    assert bad.status_code == 400
    assert client.post("/rebase-plans/new/", {"from_version": "x"}).status_code == 400
    assert Plan.objects.count() == 1


def test_superseded_versions_link_to_the_rebase_form_for_admins(
    client: Client, users: dict, plan: Plan
) -> None:
    url = f"/base-images/{plan.from_version.base_image_id}/"
    page = _login(client, users["admin"]).get(url).content.decode()
    assert f"/rebase-plans/new/?from_version={plan.from_version.pk}" in page
    assert page.count("Plan a rebase") == 1  # the superseded row only
    dev = _login(Client(), users["dev"]).get(url).content.decode()
    assert "/rebase-plans/new/" not in dev


@pytest.mark.django_db(transaction=True)
def test_rebase_form_creates_the_dry_run(client: Client, users: dict, plan: Plan) -> None:
    _engine_has("rebase_plan_create")
    Plan.objects.all().delete()
    _login(client, users["admin"])
    response = client.post(
        "/rebase-plans/new/",
        {"from_version": plan.from_version.pk, "to_version": plan.to_version.pk, "wave_size": 5},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Plan.objects.get()
    assert (created.kind, created.wave_size) == ("rebase", 5)


# --- permission matrix of the new pages ----------------------------------------------------

MATRIX = [
    # (method, url name, admin, developer of a service in it, other team, outsider)
    ("get", "list", 200, 200, 200, 200),
    ("get", "detail", 200, 200, 200, 404),
    ("post", "apply", 302, 403, 403, 403),
    ("get", "migration", 200, 403, 403, 403),
    ("get", "rebase", 200, 403, 403, 403),
]


@pytest.mark.parametrize(("method", "what", "admin", "dev", "other", "outsider"), MATRIX)
def test_permission_matrix(
    users: dict,
    plan: Plan,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    what: str,
    admin: int,
    dev: int,
    other: int,
    outsider: int,
) -> None:
    # The action's outcome is the engine's; the matrix is about who reaches it.
    url = {
        "list": "/plans/",
        "detail": f"/plans/{plan.pk}/",
        "apply": f"/plans/{plan.pk}/apply/",
        "migration": "/migration-plans/new/",
        "rebase": "/rebase-plans/new/",
    }[what]
    for who, expected in (("admin", admin), ("dev", dev), ("other", other), ("outsider", outsider)):
        response = getattr(_login(Client(), users[who]), method)(url)
        assert response.status_code == expected, (who, url)
    anonymous = getattr(Client(), method)(url)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]


def test_plan_page_queries_do_not_grow_with_the_items_and_pages_keep_filters(
    client: Client, users: dict, plan: Plan, service_team: Team, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        PlanItem.objects.create(
            plan=plan,
            deployment=DeploymentFactory(
                service=ServiceFactory(name=f"many-{n}", team=service_team),
                runtime_version=plan.from_version,
            ),
            from_version=plan.from_version,
            target_version=plan.to_version,
            verdict="compatible" if n % 2 else "unknown",
            wave=1 + n // 10,
        )
    _login(client, users["admin"])
    with django_assert_max_num_queries(12):
        page = client.get(
            f"/plans/{plan.pk}/", {"verdict": "compatible", "page_size": 10}
        ).content.decode()
    assert page.count('class="badge badge-compatible"') == 10
    assert "verdict=compatible" in page and "page=2" in page
    assert "42 in the plan" in page  # counts are of the whole plan, not of the page
    assert 'id="wave-4"' in page  # every wave is listed with its counts


def test_a_refusal_of_the_engine_is_shown_and_nothing_changes(
    client: Client, users: dict, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real engine refuses to pause a draft (a guarded transition, 409): the page says so.
    response = _login(client, users["admin"]).post(f"/plans/{plan.pk}/pause/", follow=True)
    assert "Pause refused:" in response.content.decode()
    plan.refresh_from_db()
    assert plan.state == "draft"


def test_the_deployment_page_links_the_plans_that_move_it(
    client: Client, users: dict, plan: Plan
) -> None:
    mine = plan.items.get(deployment__service__name="payments-api").deployment
    page = _login(client, users["dev"]).get(f"/deployments/{mine.pk}/").content.decode()
    assert 'id="deployment-plans"' in page and f'href="/plans/{plan.pk}/"' in page
    assert ":12-p1</td><td>Compatible</td><td>Pending</td>" in page


def test_plan_page_shows_an_items_job_error_in_the_readers_language(
    client: Client, users: dict, plan: Plan
) -> None:
    from tests.i18n_support import compile_catalog

    compile_catalog()
    error = "Registry error: 503 from harbor.local"
    PlanItem.objects.filter(plan=plan, wave=0).update(state="failed", error=error)
    Plan.objects.filter(pk=plan.pk).update(error=f"Item 1: {error}")
    _login(client, users["admin"])
    zh = client.get(f"/plans/{plan.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "镜像仓库错误：503 from harbor.local" in zh
    assert "第 1 项：镜像仓库错误：503 from harbor.local" in zh  # the plan's own, around it
    en = client.get(f"/plans/{plan.pk}/").content.decode()
    assert error in en and "镜像仓库错误" not in en
