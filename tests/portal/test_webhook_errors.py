"""A delivery attempt's error is stored in English and shown in the reader's language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from portal.actors import Actor
from portal.choices import Role
from portal.models import Team
from portal.webhooks.errors import DELIVERY_ERROR_TEMPLATES, delivery_error_display
from portal.webhooks.models import WebhookDelivery
from tests.i18n_support import compile_catalog
from tests.portal.test_webhooks import _emit, _run_pending_jobs, _subscribe
from tests.portal.webhook_receiver import closed_port

TRANSPORT = settings.BASE_DIR / "portal" / "webhooks" / "transport.py"


@pytest.fixture
def zh_catalog() -> None:
    compile_catalog()


def _fixed(template: str) -> str:
    """The template's fixed text, each value a `{}`."""
    return re.sub(r"%\(\w+\)s", "{}", template)


def test_every_sentence_transport_writes_is_listed() -> None:
    source = TRANSPORT.read_text(encoding="utf-8")
    written = re.findall(r'(?:error=|AddressRefused\(\s*)f"([^"]+)"', source)
    assert len(written) >= 7, written
    listed = {_fixed(t) for t in DELIVERY_ERROR_TEMPLATES}
    for sentence in written:
        fixed = re.sub(r"\{[^}]*\}", "{}", sentence)
        if fixed == "HTTP {} {}":  # the receiver's own reason: nothing to translate
            continue
        assert fixed in listed, sentence
    for refusal in re.findall(r'return _\("([^"]+)"\)', source):
        assert refusal in DELIVERY_ERROR_TEMPLATES, refusal


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("Refused: 127.0.0.1 is a loopback address.", "127.0.0.1 是环回地址"),
        (
            "Refused: hooks.example.com resolves to 169.254.169.254: 169.254.169.254 is a "
            "link-local address (e.g. a cloud metadata endpoint); deliveries there are refused.",
            "链路本地地址",
        ),
        ("Timed out after 1 s waiting for hooks.example.com.", "hooks.example.com"),
        ("Could not connect to hooks.example.com: timed out.", "超时"),
    ],
)
def test_a_stored_error_in_chinese(zh_catalog: None, english: str, chinese: str) -> None:
    assert delivery_error_display(english) == english
    with translation.override("zh-hans"):
        shown = delivery_error_display(english)
    assert shown != english and chinese in shown, shown


def test_an_unknown_error_is_shown_as_it_is(zh_catalog: None) -> None:
    with translation.override("zh-hans"):
        assert delivery_error_display("HTTP 502 Bad Gateway") == "HTTP 502 Bad Gateway"


def test_the_delivery_log_shows_the_error_in_the_readers_language(
    settings: Any, db: None, zh_catalog: None, make_user: Any, service_team: Team
) -> None:
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1
    user = make_user("mia-maint", service_team, Role.MAINTAINER)
    subscription, _secret = _subscribe(
        service_team, Actor(user=user), f"http://127.0.0.1:{closed_port()}/hook"
    )
    _emit(service_team)
    _run_pending_jobs()
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert delivery.last_error.startswith("Could not connect to 127.0.0.1: ")  # stored as is
    client = Client()
    client.force_login(user)
    page = client.get(f"/webhooks/deliveries/{delivery.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert page.status_code == 200
    body = page.content.decode()
    assert "无法连接到 127.0.0.1" in body and "Could not connect" not in body
    log = client.get(f"/webhooks/{subscription.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert "无法连接到 127.0.0.1" in log.content.decode()
