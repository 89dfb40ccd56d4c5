"""Granting Dockerfile-policy exceptions on the service page (it was only Django's admin)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from deployments.models import PolicyException
from portal.models import AuditEntry
from tests.deployments.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_grants_and_ends_an_exception(admin_user, service_team):
    service = ServiceFactory(name="pay-api", team=service_team)
    client = _client(admin_user)
    url = f"/services/{service.name}/policy-exceptions/"
    response = client.post(
        url, {"subject": "runtime/alpine", "justification": "musl-only vendor lib", "days": "30"}
    )
    assert response.status_code == 302
    exception = PolicyException.objects.get(service=service)
    assert exception.subject == "runtime/alpine" and exception.approved_by == admin_user
    page = client.get(f"/services/{service.name}/").content.decode()
    assert "musl-only vendor lib" in page and "Grant an exception" in page
    # The exception reaches the Dockerfile check of that service.
    from images.services.dockerfile import dockerfile_service_context

    assert (
        "runtime/alpine"
        in dockerfile_service_context(service.name, today=timezone.localdate()).exceptions
    )
    duplicate = client.post(url, {"subject": "runtime/alpine", "justification": "x", "days": "1"})
    assert duplicate.status_code == 302 and PolicyException.objects.count() == 1
    client.post(url, {"revoke": str(exception.pk)})
    assert not dockerfile_service_context(service.name, today=timezone.localdate()).exceptions
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "policy_exception.grant" in actions and "policy_exception.revoke" in actions


def test_bad_inputs_and_non_admins_change_nothing(admin_user, developer, service_team):
    service = ServiceFactory(name="pay-api", team=service_team)
    url = f"/services/{service.name}/policy-exceptions/"
    admin = _client(admin_user)
    for data in (
        {"subject": "", "justification": "x", "days": "30"},
        {"subject": "bad subject!", "justification": "x", "days": "30"},
        {"subject": "BIP004", "justification": "", "days": "30"},
        {"subject": "BIP004", "justification": "x", "days": "999"},
        {"subject": "BIP004", "justification": "x", "days": "-1"},
    ):
        admin.post(url, data)
    assert not PolicyException.objects.exists()
    refused = _client(developer).post(
        url, {"subject": "BIP004", "justification": "x", "days": "30"}
    )
    assert refused.status_code == 403 and "platform admin" in refused.content.decode()
    assert (
        "Grant an exception"
        not in _client(developer).get(f"/services/{service.name}/").content.decode()
    )
    assert not PolicyException.objects.exists()


def test_the_service_page_lists_open_exceptions_only(admin_user, service_team):
    """The page asks for exceptions only when one is open (service_page_get's EXISTS): an
    expired one is neither listed nor makes the list appear."""
    service = ServiceFactory(name="pay-api", team=service_team)
    client = _client(admin_user)
    now = timezone.now()
    PolicyException.objects.create(
        service=service,
        subject="BIP004",
        justification="ended last week",
        expires_at=now - dt.timedelta(days=7),
        approved_by=admin_user,
    )
    page = client.get(f"/services/{service.name}/").content.decode()
    assert "ended last week" not in page and "None: the standard applies in full." in page
    PolicyException.objects.create(
        service=service,
        subject="runtime/alpine",
        justification="musl-only vendor lib",
        expires_at=now + dt.timedelta(days=7),
        approved_by=admin_user,
    )
    page = client.get(f"/services/{service.name}/").content.decode()
    assert "musl-only vendor lib" in page and "ended last week" not in page
    assert "None: the standard applies in full." not in page
