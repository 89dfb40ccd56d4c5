"""The plan engine on real parts: dry run, waves, releases rendered and validated, CD's reports,
pause/resume/abort/retry-failed, re-targeting, one release per target, the publish's plan, and
queries per plan independent of the number of deployments."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments.manifests.validation import validate_manifest
from deployments.models import Deployment, Plan, PlanItem, Release
from deployments.services import (
    environment_rank,
    migration_plan_create,
    plan_abort,
    plan_advance,
    plan_apply,
    plan_item_app_image_built,
    plan_pause,
    plan_resume,
    plan_retry_failed,
    rebase_plan_create,
    release_create,
    release_status_report,
)
from images.models import ImageVersion
from portal.actors import Actor
from portal.jobs import IllegalTransition, job_execute
from portal.models import AuditEntry, Job
from tests.deployments.plan_world import (
    deployments_on,
    line,
    run_wave_jobs,
    with_abi,
)
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db

ADMIN = Actor.system_actor("test-admin")


@pytest.fixture(autouse=True)
def _portal_url(settings):
    settings.PORTAL_URL = "https://portal.example.com"


@pytest.fixture
def containment():
    """Incompatible items come from the real compat verdict (set containment of version
    needs); nothing stands in for it."""


@pytest.fixture
def world(service_team):
    old, new = line()
    with_abi(new)
    deps = deployments_on(old, service_team, {"prod": 3, "dev": 1, "staging": 2})
    return {"old": old, "new": new, "deployments": deps}


def states(plan):
    return dict(PlanItem.objects.filter(plan=plan).values_list("deployment_id", "state"))


def report_all(plan, status="healthy", wave=None):
    items = PlanItem.objects.filter(plan=plan, release__isnull=False, state="released")
    if wave is not None:
        items = items.filter(wave=wave)
    for item in items:
        release_status_report(release_id=item.release_id, status=status, note="", actor=ADMIN)


def test_environment_rank_orders_dev_before_staging_before_prod():
    names = ["prod", "zeta", "staging", "dev", "qa"]
    assert sorted(names, key=environment_rank) == ["dev", "qa", "staging", "zeta", "prod"]


def test_rebase_dry_run_selects_the_old_version_and_assigns_waves(world, service_team):
    other = ImageVersionFactory()
    deployments_on(other, service_team, {"dev": 1}, prefix="elsewhere")
    plan = rebase_plan_create(
        actor=ADMIN,
        from_version_id=world["old"].pk,
        to_version_id=world["new"].pk,
        wave_size=2,
    )
    assert plan.state == "draft" and plan.kind == "rebase"
    items = list(plan.items.select_related("deployment__environment"))
    assert {i.deployment_id for i in items} == {d.pk for d in world["deployments"]}
    waves = [(i.deployment.environment.name, i.wave) for i in items]
    # canary: the one dev deployment; staging in one batch of 2; prod in 2 + 1
    assert sorted(waves, key=lambda w: w[1]) == [
        ("dev", 0),
        ("staging", 1),
        ("staging", 1),
        ("prod", 2),
        ("prod", 2),
        ("prod", 3),
    ]
    # the real compat verdict: the world's binaries need only what the new version defines
    assert {i.verdict for i in items} == {"compatible"}
    assert {i.state for i in items} == {"pending"}
    assert not Release.objects.exists()  # a dry run
    assert AuditEntry.objects.filter(action="plan.create_rebase").count() == 1


def test_rebase_refusals(world, service_team, developer):
    old, new = world["old"], world["new"]
    with pytest.raises(Exception, match="platform admin"):
        rebase_plan_create(
            actor=Actor(user=developer), from_version_id=old.pk, to_version_id=new.pk
        )
    with pytest.raises(Exception, match="target is the version"):
        rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=old.pk)
    foreign = ImageVersionFactory()
    with pytest.raises(Exception, match="OS migration"):
        rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=foreign.pk)
    with pytest.raises(Exception, match="only an approved"):
        rebase_plan_create(actor=ADMIN, from_version_id=new.pk, to_version_id=old.pk)
    with pytest.raises(Exception, match="wave size"):
        rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk, wave_size=0)
    assert not Plan.objects.exists()


def test_rebase_end_to_end_canary_healthy_waves_completed(world):
    old, new = world["old"], world["new"]
    plan = rebase_plan_create(
        actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk, wave_size=2
    )
    plan = plan_apply(plan_id=plan.pk, actor=ADMIN)
    assert plan.state == "applying" and plan.current_wave == 0
    assert not Release.objects.exists()  # releases are made by the job, not the request
    assert run_wave_jobs(plan) == ["succeeded"]
    canary = PlanItem.objects.get(plan=plan, wave=0)
    assert canary.state == "released"
    release = canary.release
    assert release.base_digest == new.digest and release.runtime_version_id == new.pk
    assert release.binary_version_id == canary.deployment.binary_version_id  # same binary
    assert release.number == 1
    manifest = yaml.safe_load(release.manifest_yaml)
    image = manifest["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@" + new.digest)
    assert validate_manifest(release.manifest_yaml, "1.33").valid
    assert Deployment.objects.get(pk=canary.deployment_id).runtime_version_id == new.pk
    # nothing else moves until CD says the canary is healthy
    assert plan_advance(plan_id=plan.pk).current_wave == 0
    assert Release.objects.count() == 1
    release_status_report(release_id=release.pk, status="deployed", note="", actor=ADMIN)
    assert Plan.objects.get(pk=plan.pk).current_wave == 0
    release_status_report(release_id=release.pk, status="healthy", note="ok", actor=ADMIN)
    plan.refresh_from_db()
    assert plan.current_wave == 1
    for wave in (1, 2, 3):
        assert run_wave_jobs(plan) == ["succeeded"]
        report_all(plan, wave=wave)
        plan.refresh_from_db()
    assert plan.state == "completed" and plan.finished_at is not None
    assert set(states(plan).values()) == {"healthy"}
    assert not Deployment.objects.filter(runtime_version=old).exists()
    assert Release.objects.count() == 6


def test_a_failure_report_stops_the_plan_and_retry_failed_resumes(world):
    plan = rebase_plan_create(
        actor=ADMIN, from_version_id=world["old"].pk, to_version_id=world["new"].pk
    )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    canary = PlanItem.objects.get(plan=plan, wave=0)
    release_status_report(
        release_id=canary.release_id, status="failed", note="CrashLoopBackOff", actor=ADMIN
    )
    plan.refresh_from_db()
    assert plan.state == "failed" and "CrashLoopBackOff" in plan.error
    canary.refresh_from_db()
    assert canary.state == "failed"
    # a failed release takes no further report
    with pytest.raises(IllegalTransition):
        release_status_report(release_id=canary.release_id, status="healthy", note="", actor=ADMIN)
    with pytest.raises(IllegalTransition):
        plan_pause(plan_id=plan.pk, actor=ADMIN)
    plan = plan_retry_failed(plan_id=plan.pk, actor=ADMIN)
    assert plan.state == "applying"
    canary.refresh_from_db()
    assert canary.state == "released" and canary.release.status == ""
    assert Release.objects.count() == 1  # no second release for the same target
    release_status_report(release_id=canary.release_id, status="healthy", note="", actor=ADMIN)
    assert Plan.objects.get(pk=plan.pk).current_wave == 1
    with pytest.raises(IllegalTransition):
        plan_retry_failed(plan_id=plan.pk, actor=ADMIN)


def test_pause_stops_the_wave_job_and_resume_restarts_it(world):
    plan = rebase_plan_create(
        actor=ADMIN, from_version_id=world["old"].pk, to_version_id=world["new"].pk
    )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    plan_pause(plan_id=plan.pk, actor=ADMIN)
    assert run_wave_jobs(plan) == ["succeeded"]
    assert not Release.objects.exists()  # the job saw the pause and released nothing
    with pytest.raises(IllegalTransition):
        plan_pause(plan_id=plan.pk, actor=ADMIN)
    with pytest.raises(IllegalTransition):
        plan_apply(plan_id=plan.pk, actor=ADMIN)
    plan = plan_resume(plan_id=plan.pk, actor=ADMIN)
    assert plan.state == "applying"
    assert run_wave_jobs(plan) == ["succeeded"]
    assert Release.objects.count() == 1
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"plan.apply", "plan.pause", "plan.resume"} <= actions


def test_abort_skips_what_is_not_released(world):
    plan = rebase_plan_create(
        actor=ADMIN, from_version_id=world["old"].pk, to_version_id=world["new"].pk
    )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    plan = plan_abort(plan_id=plan.pk, actor=ADMIN)
    assert plan.state == "aborted"
    counts = list(PlanItem.objects.filter(plan=plan).values_list("state", flat=True))
    assert sorted(counts) == ["released"] + ["skipped"] * 5
    with pytest.raises(IllegalTransition):
        plan_abort(plan_id=plan.pk, actor=ADMIN)
    with pytest.raises(IllegalTransition):
        plan_resume(plan_id=plan.pk, actor=ADMIN)
    # the canary's report after the abort is recorded and moves nothing
    canary = PlanItem.objects.get(plan=plan, wave=0)
    release_status_report(release_id=canary.release_id, status="healthy", note="", actor=ADMIN)
    assert Plan.objects.get(pk=plan.pk).state == "aborted"


def test_soak_time_advances_without_reports(world):
    plan = rebase_plan_create(
        actor=ADMIN,
        from_version_id=world["old"].pk,
        to_version_id=world["new"].pk,
        soak_seconds=600,
    )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    assert plan_advance(plan_id=plan.pk).current_wave == 0  # soaking
    Plan.objects.filter(pk=plan.pk).update(wave_started_at=timezone.now() - timedelta(seconds=601))
    assert plan_advance(plan_id=plan.pk).current_wave == 1


def test_incompatible_items_are_blocked_never_released(service_team, containment):
    old, new = line()
    with_abi(new, "2.31", [f"GLIBC_2.{n}" for n in range(2, 32)])
    deployments_on(old, service_team, {"dev": 2})
    newer = deployments_on(
        old, service_team, {"prod": 1}, prefix="new", version_needs=[["libc.so.6", "GLIBC_2.34"]]
    )
    ok = deployments_on(
        old, service_team, {"staging": 1}, prefix="ok", version_needs=[["libc.so.6", "GLIBC_2.17"]]
    )
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    blocked = PlanItem.objects.get(plan=plan, deployment=newer[0])
    assert blocked.state == "blocked" and blocked.verdict == "incompatible"
    assert blocked.findings[0]["key"] == "version-missing:libc.so.6"
    assert "GLIBC_2.34" in blocked.findings[0]["detail"]
    assert blocked.findings[0]["blocking"] is True
    good = PlanItem.objects.get(plan=plan, deployment=ok[0])
    assert good.state == "pending" and good.wave == 0  # the only releasable one: the canary
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    report_all(plan)
    plan.refresh_from_db()
    assert plan.state == "completed"
    assert Release.objects.count() == 1
    assert not Release.objects.filter(deployment=newer[0]).exists()


def test_migration_plan_verdict_table_remediation_and_selectors(
    service_team, platform_team, containment
):
    centos = ImageVersionFactory(base_image__name="runtime/centos", tag="7")
    debian = with_abi(
        ImageVersionFactory(base_image__name="runtime/debian", tag="11"),
        "2.31",
        [f"GLIBC_2.{n}" for n in range(2, 32)],
    )
    build = ImageVersionFactory(
        base_image=BaseImageFactory(name="build/gcc", kind="build"), tag="10"
    )
    with_abi(build, "2.31")
    old_glibc = deployments_on(
        centos, service_team, {"dev": 1}, version_needs=[["libc.so.6", "GLIBC_2.17"]]
    )
    too_new = deployments_on(
        centos, service_team, {"prod": 1}, prefix="new", version_needs=[["libc.so.6", "GLIBC_2.34"]]
    )
    deployments_on(debian, service_team, {"staging": 1}, prefix="already")
    plan = migration_plan_create(
        actor=ADMIN, target_version_id=debian.pk, base_image_id=centos.base_image_id
    )
    assert plan.kind == "migration" and plan.selector == {"base_image": centos.base_image_id}
    items = {i.deployment_id: i for i in plan.items.all()}
    assert set(items) == {old_glibc[0].pk, too_new[0].pk}
    assert items[old_glibc[0].pk].verdict == "compatible"
    blocked = items[too_new[0].pk]
    assert blocked.state == "blocked"
    remediation = [f for f in blocked.findings if f["key"] == "remediation.rebuild"][0]
    assert remediation["remediation"] == "rebuild in build/gcc:10, glibc ≤ 2.31"
    # by ids; by team and environment
    by_ids = migration_plan_create(
        actor=ADMIN, target_version_id=debian.pk, deployment_ids=[too_new[0].pk]
    )
    assert list(by_ids.items.values_list("deployment_id", flat=True)) == [too_new[0].pk]
    with pytest.raises(Exception, match="another plan"):
        migration_plan_create(
            actor=ADMIN, target_version_id=debian.pk, team=service_team.name, environment="dev"
        )
    with pytest.raises(Exception, match="Choose deployments"):
        migration_plan_create(actor=ADMIN, target_version_id=debian.pk)
    with pytest.raises(Exception, match="No team"):
        migration_plan_create(actor=ADMIN, target_version_id=debian.pk, team="nobody")
    with pytest.raises(Exception, match="No deployments"):
        migration_plan_create(actor=ADMIN, target_version_id=debian.pk, deployment_ids=[999999])
    with pytest.raises(Exception, match="runtime"):
        migration_plan_create(actor=ADMIN, target_version_id=build.pk, team=service_team.name)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    assert list(Release.objects.values_list("deployment_id", flat=True)) == [old_glibc[0].pk]


def test_migration_skips_unknown_verdicts(service_team):
    centos = ImageVersionFactory(base_image__name="runtime/centos", tag="7")
    debian = ImageVersionFactory(base_image__name="runtime/debian", tag="12")  # no ABI facts
    deployments_on(centos, service_team, {"dev": 1})
    plan = migration_plan_create(actor=ADMIN, target_version_id=debian.pk, team=service_team.name)
    item = plan.items.get()
    assert item.verdict == "unknown" and item.state == "skipped"
    assert item.findings[0]["key"] == "target.not_scanned"
    assert plan_apply(plan_id=plan.pk, actor=ADMIN).state == "completed"
    assert not Release.objects.exists()


def test_a_newer_patch_retargets_items_not_released(world):
    old, new = world["old"], world["new"]
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)  # the canary moved to `new`
    canary = PlanItem.objects.get(plan=plan, wave=0)
    newest = with_abi(ImageVersionFactory(base_image=old.base_image, tag="12.9"))
    ImageVersion.objects.filter(pk=new.pk).update(state="superseded")
    second = rebase_plan_create(actor=ADMIN, from_version_id=new.pk, to_version_id=newest.pk)
    moved = dict(second.items.values_list("deployment_id", "from_version_id"))
    assert len(moved) == 6
    assert moved[canary.deployment_id] == new.pk  # released on `new`: rebased again from there
    assert {v for k, v in moved.items() if k != canary.deployment_id} == {old.pk}
    first = states(plan)
    assert first[canary.deployment_id] == "released"
    assert sorted(first.values()) == ["released"] + ["skipped"] * 5
    assert "Re-targeted to plan" in PlanItem.objects.filter(plan=plan, state="skipped")[0].error
    # the old plan finishes with its canary
    release_status_report(release_id=canary.release_id, status="healthy", note="", actor=ADMIN)
    assert Plan.objects.get(pk=plan.pk).state == "completed"


def test_a_deployment_never_gets_two_releases_for_the_same_target(world):
    old, new = world["old"], world["new"]
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    canary = PlanItem.objects.select_related("deployment").get(plan=plan, wave=0)
    # someone released it on the target by hand meanwhile
    release_create(actor=ADMIN, deployment=canary.deployment, runtime_version=new)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    canary.refresh_from_db()
    assert canary.state == "skipped" and "Already released" in canary.error
    assert Release.objects.filter(deployment=canary.deployment).count() == 1
    # the model's partial unique constraint backs it
    other = PlanItem.objects.filter(plan=plan).exclude(pk=canary.pk).first()
    release = Release.objects.get(deployment=canary.deployment)
    PlanItem.objects.filter(pk=canary.pk).update(release=release)
    second = Plan.objects.create(kind="rebase", from_version=old, to_version=new)
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanItem.objects.create(
            plan=second,
            deployment=canary.deployment,
            from_version=old,
            target_version=new,
            verdict="unknown",
            release=release,
        )
    assert other is not None


def test_image_mode_items_build_then_release(service_team):
    """The wave queues the real app-image build job (its run on buildah is in
    test_rebase_e2e.py); the job's success hands the pushed digest to the item."""
    old, new = line()
    deps = deployments_on(old, service_team, {"dev": 1}, mode="image")
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    item = plan.items.get()
    build = Job.objects.get(kind="deployments.app_image_build")
    assert item.state == "building" and item.build_job_id == build.pk
    assert build.params == {
        "deployment_id": deps[0].pk,
        "runtime_version_id": new.pk,
        "plan_item_id": item.pk,
    }
    assert not Release.objects.exists()
    with pytest.raises(Exception, match="digest-pinned"):
        plan_item_app_image_built(item_id=item.pk, app_image="apps/x:latest", actor=ADMIN)
    pinned = "127.0.0.1:5000/apps/svc-dev-0@sha256:" + "c" * 64
    item = plan_item_app_image_built(item_id=item.pk, app_image=pinned, actor=ADMIN)
    assert item.state == "released"
    assert item.release.base_digest == new.digest and pinned in item.release.manifest_yaml
    assert new.digest in item.release.dockerfile
    with pytest.raises(IllegalTransition):
        plan_item_app_image_built(item_id=item.pk, app_image=pinned, actor=ADMIN)


def test_publish_of_a_new_version_makes_a_draft_rebase_plan(
    service_team, scratch_registry, django_capture_on_commit_callbacks
):
    from images.services.publish import image_version_publish
    from tests.fixtures.registry import put_image

    image = BaseImageFactory(name="runtime/debian", registry__url=scratch_registry.url)
    registry = image.registry
    old = ImageVersionFactory(
        base_image=image, tag="12", digest=put_image(registry.url, "runtime/debian", "12")
    )
    deployments_on(old, service_team, {"dev": 1, "prod": 1})
    candidate = ImageVersionFactory(
        base_image=image,
        tag="12",
        digest=put_image(registry.url, "runtime/debian", "12-candidate-1"),
        state="candidate",
    )
    with django_capture_on_commit_callbacks(execute=True):
        image_version_publish(version=candidate, actor=Actor.system_actor("test"))
    plan = Plan.objects.get()
    assert (plan.kind, plan.state, plan.from_version_id, plan.to_version_id) == (
        "rebase",
        "draft",
        old.pk,
        candidate.pk,
    )
    assert plan.items.count() == 2


@pytest.mark.parametrize("n", [10, 50])
def test_queries_per_plan_do_not_grow_with_deployments(
    n, service_team, django_assert_max_num_queries, settings
):
    settings.PORTAL_PLAN_RELEASE_CHUNK = 1000
    old, new = line()
    with_abi(new)
    deployments_on(old, service_team, {"dev": 1, "prod": n - 1})
    with django_assert_max_num_queries(20):
        plan = rebase_plan_create(
            actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk, wave_size=1000
        )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    report_all(plan)
    plan.refresh_from_db()
    assert plan.current_wave == 1
    from deployments.services import plan_wave_release

    with django_assert_max_num_queries(40):
        result = plan_wave_release(plan_id=plan.pk, wave=1)
    assert result["released"] == n - 1
    from deployments.selectors.plans import plan_summary

    with django_assert_max_num_queries(2):
        summary = plan_summary(plan)
    assert summary["by_state"]["released"] == n - 1 and summary["total"] == n


def test_a_refused_render_fails_the_item_and_plan_and_retry_renders_again(service_team):
    old, new = line()
    deps = deployments_on(old, service_team, {"dev": 1})
    env = deps[0].environment
    type(env).objects.filter(pk=env.pk).update(delivery_strategy="imageVolume", k8s_version="1.35")
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    item = plan.items.get()
    assert item.state == "failed" and "no OCI artifact" in item.error
    plan.refresh_from_db()
    assert plan.state == "failed" and not Release.objects.exists()
    binary = deps[0].binary_version
    type(binary).objects.filter(pk=binary.pk).update(
        artifact_ref="127.0.0.1:5000/binaries/svc@sha256:" + "d" * 64
    )
    plan_retry_failed(plan_id=plan.pk, actor=ADMIN)
    assert plan.items.get().state == "pending"
    run_wave_jobs(plan)
    item = plan.items.get()
    assert item.state == "released" and item.release.strategy == "imageVolume"


def test_a_failed_app_image_build_stops_the_plan(service_team):
    from deployments.services import plan_item_app_image_failed

    old, new = line()
    deployments_on(old, service_team, {"dev": 1}, mode="image")
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    # the real build job fails (the factory's binary was never stored), and its failure hook
    # fails the item and stops the plan
    build = Job.objects.get(kind="deployments.app_image_build")
    assert job_execute(build.pk) == "failed"
    item = plan.items.get()
    assert item.state == "failed" and item.error == Job.objects.get(pk=build.pk).error
    assert Plan.objects.get(pk=plan.pk).state == "failed"
    with pytest.raises(IllegalTransition):
        plan_item_app_image_failed(item_id=item.pk, error="again", actor=ADMIN)


def test_the_beat_task_advances_soaked_plans(world, settings):
    from deployments.tasks import advance_plans

    assert "advance-plans" in settings.CELERY_BEAT_SCHEDULE
    plan = rebase_plan_create(
        actor=ADMIN,
        from_version_id=world["old"].pk,
        to_version_id=world["new"].pk,
        soak_seconds=60,
    )
    plan_apply(plan_id=plan.pk, actor=ADMIN)
    run_wave_jobs(plan)
    assert advance_plans() == 1
    assert Plan.objects.get(pk=plan.pk).current_wave == 0
    Plan.objects.filter(pk=plan.pk).update(wave_started_at=timezone.now() - timedelta(minutes=2))
    advance_plans()
    assert Plan.objects.get(pk=plan.pk).current_wave == 1
