"""A small company for the dashboard and search tests: two service teams, a catalog with an
approved, a deprecated past-EOL, a soon-EOL and a vulnerable base, superseded and revoked
versions, deployments in two environments, and releases spread over the chart's window."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from deployments.models import Deployment, DeploymentDailyCount, DeploymentDailyCountDay, Release
from portal.models import Team
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import BaseImageFactory, ImageVersionFactory

MB = 1_000_000


@dataclass
class World:
    payments: Team
    search: Team
    debian: Any
    centos: Any
    ubuntu: Any
    v_debian: Any
    v_debian_old: Any
    v_centos: Any
    v_ubuntu: Any
    v_revoked: Any
    prod: Any
    dev: Any
    deployments: dict[str, Deployment]


def release(deployment: Deployment, version: Any, days_ago: int, number: int) -> Release:
    """A release of `deployment` on `version`, created `days_ago` days ago."""
    made = Release.objects.create(
        deployment=deployment,
        number=number,
        strategy="hostPath",
        binary_version=deployment.binary_version,
        runtime_version=version,
        binary_sha256=deployment.binary_version.sha256,
        base_digest=version.digest,
        k8s_version="1.33",
    )
    Release.objects.filter(pk=made.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    return made


def forget_daily_counts() -> None:
    """Drop the dashboard's stored daily counts. The world backdates its releases, which the
    product never does (a finished day's count is final); the migration already stored the
    chart's window, empty, when it created the test database."""
    DeploymentDailyCount.objects.all().delete()
    DeploymentDailyCountDay.objects.all().delete()


def build_world(payments: Team) -> World:
    """The world; `payments` is the conftest's service team (its developer is dave-dev)."""
    search = Team.objects.create(name="search")
    today = timezone.localdate()
    debian = BaseImageFactory(name="runtime/debian", status="approved")
    centos = BaseImageFactory(
        name="runtime/centos",
        os_family="centos",
        os_version="7",
        status="deprecated",
        eol_date=dt.date(2024, 6, 30),
    )
    ubuntu = BaseImageFactory(
        name="runtime/ubuntu",
        os_family="ubuntu",
        os_version="20.04",
        status="approved",
        eol_date=today + dt.timedelta(days=30),
    )
    BaseImageFactory(name="runtime/alpine", os_family="alpine", os_version="3", status="restricted")
    v_debian = ImageVersionFactory(
        base_image=debian,
        tag="12.2",
        size=30 * MB,
        digest="sha256:" + "ab12" + "0" * 60,
        scan_summary={"open": 3, "critical": 1, "high": 0},
    )
    v_debian_old = ImageVersionFactory(
        base_image=debian, tag="12.1", size=29 * MB, state="superseded", superseded_by=v_debian
    )
    v_centos = ImageVersionFactory(base_image=centos, tag="7", size=70 * MB)
    v_ubuntu = ImageVersionFactory(base_image=ubuntu, tag="20.04", size=None)
    v_revoked = ImageVersionFactory(base_image=debian, tag="12.0", size=28 * MB, state="revoked")
    prod = EnvironmentFactory(name="prod", namespace="apps-prod")
    dev = EnvironmentFactory(name="dev", namespace="apps-dev")
    orders = ServiceFactory(name="orders", team=payments)
    ledger = ServiceFactory(name="ledger", team=payments)
    payroll = ServiceFactory(name="payroll", team=payments)
    indexer = ServiceFactory(name="indexer", team=search)

    def deploy(service: Any, env: Any, version: Any, mode: str = "volume") -> Deployment:
        binary = BinaryVersionFactory(service=service, size=5 * MB)
        return DeploymentFactory(
            service=service,
            environment=env,
            runtime_version=version,
            binary_version=binary,
            mode=mode,
        )

    deployments = {
        "orders-prod": deploy(orders, prod, v_debian),
        "payroll-prod": deploy(payroll, prod, v_debian),
        "ledger-prod": deploy(ledger, prod, v_centos, mode="image"),
        "indexer-prod": deploy(indexer, prod, v_debian_old),
        "orders-dev": deploy(orders, dev, v_ubuntu),
        "ledger-dev": deploy(ledger, dev, v_revoked),
    }
    # Releases: orders-prod moved from centos to debian 10 days ago; ledger-prod has been on
    # centos since before the window; indexer-prod started 5 days ago; dev has no release.
    release(deployments["orders-prod"], v_centos, 200, 1)
    release(deployments["orders-prod"], v_debian, 10, 2)
    release(deployments["ledger-prod"], v_centos, 120, 1)
    release(deployments["indexer-prod"], v_debian_old, 5, 1)
    forget_daily_counts()
    return World(
        payments=payments,
        search=search,
        debian=debian,
        centos=centos,
        ubuntu=ubuntu,
        v_debian=v_debian,
        v_debian_old=v_debian_old,
        v_centos=v_centos,
        v_ubuntu=v_ubuntu,
        v_revoked=v_revoked,
        prod=prod,
        dev=dev,
        deployments=deployments,
    )


def grow(world: World, n: int) -> None:
    """`n` more services with a deployment and two releases each (for the query pins)."""
    first = Deployment.objects.count()
    for i in range(first, first + n):
        service = ServiceFactory(name=f"extra{i}", team=world.search if i % 2 else world.payments)
        binary = BinaryVersionFactory(service=service, size=MB)
        deployment = DeploymentFactory(
            service=service,
            environment=world.prod,
            runtime_version=world.v_debian,
            binary_version=binary,
        )
        release(deployment, world.v_centos, 100, 1)
        release(deployment, world.v_debian, 3, 2)
