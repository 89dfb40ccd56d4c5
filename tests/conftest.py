"""Shared fixtures: teams, users with roles, API clients with tokens, the demo catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from portal.actors import Actor
from portal.auth import token_create
from portal.choices import Role
from portal.models import Membership, Team

pytest_plugins = ["tests.fixtures.registry"]

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_catalog(settings: object) -> None:
    """MD5 hashing in tests (seed_demo hashes passwords), and no catalog cached across tests."""
    from django.core.cache import cache

    from images.catalog_cache import policy_catalog_clear

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    policy_catalog_clear()
    # Nothing cached across tests (the first-run banner's 3 s cache made query counts depend
    # on the test before).
    cache.clear()
    # The publish gate refuses versions never scanned (PORTAL_SCAN_REQUIRED, on by default);
    # the tests written before scanning publish unscanned candidates, so it is off here and
    # tests/images/test_gate.py turns it on.
    settings.PORTAL_SCAN_REQUIRED = False


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """The test client's LocaleMiddleware leaves a zh-Hans request's language active in the
    thread; messages built outside a request in the next test would come out in Chinese."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def platform_team(db: None) -> Team:
    return Team.objects.create(name="platform", is_platform=True)


@pytest.fixture
def service_team(db: None) -> Team:
    return Team.objects.create(name="payments")


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    def make(username: str, team: Team | None = None, role: str = Role.VIEWER) -> object:
        user = get_user_model().objects.create_user(username=username, password=PASSWORD)
        if team is not None:
            Membership.objects.create(team=team, user=user, role=role)
        return user

    return make


@pytest.fixture
def admin_user(make_user: Callable[..., object], platform_team: Team) -> object:
    return make_user("alice-admin", platform_team, Role.PLATFORM_ADMIN)


@pytest.fixture
def developer(make_user: Callable[..., object], service_team: Team) -> object:
    return make_user("dave-dev", service_team, Role.DEVELOPER)


@pytest.fixture
def make_token(db: None) -> Callable[..., str]:
    """A token of a new person who holds the team's highest role (each token: its own person).

    Tokens act for their creator (portal.actors), so every test token has one; pass `user`
    to make a given person's token.
    """
    counter = iter(range(10_000))

    def make(
        team: Team, scopes: list[str], expires_days: int | None = None, user: object = None
    ) -> str:
        n = next(counter)
        if user is None:
            role = Role.PLATFORM_ADMIN if team.is_platform else Role.MAINTAINER
            user = get_user_model().objects.create_user(username=f"token-owner-{team.name}-{n}")
            Membership.objects.create(team=team, user=user, role=role)
        _, secret = token_create(
            team=team,
            name=f"t{n}",
            scopes=scopes,
            expires_days=expires_days,
            actor=Actor(user=user),
        )
        return secret

    return make


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def token_client(make_token: Callable[..., str]) -> Callable[..., APIClient]:
    def make(team: Team, scopes: list[str]) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(team, scopes)}")
        return client

    return make


@pytest.fixture
def demo_catalog(db: None) -> None:
    from images.demo import seed_demo

    seed_demo()
