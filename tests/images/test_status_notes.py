"""The status notes the standard's rules derive are stored in English and shown translated."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from images.choices import OsFamily
from images.services import derive_status
from images.status_notes import ALPINE_NOTE, status_note_display
from tests.i18n_support import compile_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def zh_catalog() -> None:
    compile_catalog()


def test_every_derived_note_reads_in_chinese_and_stays_english_when_stored() -> None:
    today = dt.date(2026, 12, 2)
    notes = [
        derive_status(os_family=family, os_version=version, status="approved", today=today).note
        for family, version in ((OsFamily.ALPINE, "3.20"), (OsFamily.NONE, ""), ("centos", "7"))
    ]
    assert notes[0] == ALPINE_NOTE and "reached end of life on 2024-06-30" in notes[2]
    with translation.override("zh-hans"):
        shown = [status_note_display(note) for note in notes]
    assert "musl" in shown[0] and "规范限制使用" in shown[0]
    assert "不推荐" in shown[1]
    assert shown[2] == "CentOS 7 已于 2024-06-30 到达生命周期终点（EOL）。"
    with translation.override("en"):
        assert [status_note_display(note) for note in notes] == notes


def test_an_admins_own_note_is_shown_as_written() -> None:
    with translation.override("zh-hans"):
        assert status_note_display("Use runtime/debian:12 after March.") == (
            "Use runtime/debian:12 after March."
        )
        assert status_note_display("") == ""


def test_the_catalog_page_shows_the_note_in_the_readers_language(client, developer) -> None:
    from django.urls import reverse

    from tests.images.factories import BaseImageFactory

    image = BaseImageFactory(
        name="runtime/alpine", os_family="alpine", status="restricted", status_note=ALPINE_NOTE
    )
    client.force_login(developer)
    for url in (
        reverse("images:base-image-list"),
        reverse("images:base-image-detail", args=[image.pk]),
    ):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans")
        assert page.status_code == 200
        text = page.content.decode()
        assert "规范限制使用" in text and "Restricted by the standard" not in text
