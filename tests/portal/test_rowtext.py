"""Rows written in Python (`portal.rowtext`) give what the template filters gave: the same
URLs as `reverse`, the same clipped digests as `truncatechars`, the same dates as `date`
in both languages and in the current time zone."""

import datetime as dt

import pytest
from django.template import engines
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from portal.rowtext import clip, date_formatter, url_filler
from tests.i18n_support import compile_catalog

TEMPLATES = engines["django"]


@pytest.mark.parametrize(
    ("view_name", "kwarg", "value"),
    [
        ("deployments:release-detail", "pk", 7),
        ("deployments:release-rollback", "pk", 123456),
        ("deployments:service-detail", "name", "orders-api"),
        ("job-detail", "pk", "42"),
    ],
)
def test_url_filler_gives_what_reverse_gives(view_name, kwarg, value):
    fill = url_filler(view_name, kwarg)
    assert fill(value) == reverse(view_name, kwargs={kwarg: value})
    request = RequestFactory().get("/", HTTP_HOST="testserver")
    absolute = url_filler(view_name, kwarg, request)
    assert absolute(value) == request.build_absolute_uri(reverse(view_name, kwargs={kwarg: value}))


def test_url_filler_quotes_as_reverse_does():
    # A name a str route takes with characters reverse quotes (the converter checks none).
    assert url_filler("deployments:service-detail", "name")("a b%") == reverse(
        "deployments:service-detail", kwargs={"name": "a b%"}
    )


@pytest.mark.parametrize("value", ["", "abc", "sha256:" + "a" * 64, "0123456789abc", "x" * 14])
@pytest.mark.parametrize("length", [1, 13, 20])
def test_clip_is_truncatechars(value, length):
    expected = TEMPLATES.from_string(f"{{{{ v|truncatechars:{length} }}}}").render({"v": value})
    assert clip(value, length) == expected


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("name", ["SHORT_DATETIME_FORMAT", "DATETIME_FORMAT"])
def test_date_formatter_is_the_date_filter(settings, language, name):
    compile_catalog()
    settings.TIME_ZONE = "Asia/Shanghai"
    when = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.UTC)  # the next day in Shanghai
    template = TEMPLATES.from_string(f'{{{{ v|date:"{name}" }}}}')
    with translation.override(language):
        assert date_formatter(name)(when) == template.render({"v": when})
        assert date_formatter(name)(None) == ""
