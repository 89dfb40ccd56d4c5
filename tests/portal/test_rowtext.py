"""Rows written in Python (`portal.rowtext`) give what the template filters gave: the same
URLs as `reverse`, the same clipped digests as `truncatechars`, the same dates as `date`
in both languages and in the current time zone, the same escaping as `format_html` and the
same hidden input as `{% csrf_token %}`."""

import datetime as dt

import pytest
from django.middleware.csrf import _unmask_cipher_token
from django.template import engines
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from portal.rowtext import clip, csrf_input, date_formatter, html, url_filler
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
@pytest.mark.parametrize(
    "name", ["SHORT_DATETIME_FORMAT", "DATETIME_FORMAT", "SHORT_DATE_FORMAT", "DATE_FORMAT"]
)
def test_date_formatter_is_the_date_filter(settings, language, name):
    compile_catalog()
    settings.TIME_ZONE = "Asia/Shanghai"
    when = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.UTC)  # the next day in Shanghai
    template = TEMPLATES.from_string(f'{{{{ v|date:"{name}" }}}}')
    with translation.override(language):
        assert date_formatter(name)(when) == template.render({"v": when})
        assert date_formatter(name)(None) == ""
        if "TIME" not in name:  # a date is shown as it is (no time zone to move it by)
            day = dt.date(2026, 2, 1)
            assert date_formatter(name)(day) == template.render({"v": day})


def test_a_format_with_escaped_letters_keeps_them(settings):
    settings.DATE_FORMAT = r"\Y\e\a\r Y"
    with translation.override(None):
        assert date_formatter("DATE_FORMAT")(dt.date(2026, 2, 1)) == "Year 2026"


class Marked:
    """What Django counts as safe: it writes its own HTML."""

    def __html__(self) -> str:
        return "<b>kept</b>"


@pytest.mark.parametrize(
    "value",
    ["<script>&\"'", 7, None, ["a", "<b>"], {"k": "<v>"}, mark_safe("<i>safe</i>"), Marked()],
)
def test_html_escapes_as_format_html_does(value):
    template = '<td title="{}">{}</td>'
    assert html(template, value, value) == format_html(template, value, value)
    assert isinstance(html(template, value, value), SafeString)


def test_html_escapes_a_lazy_translation_as_its_text():
    with translation.override("en"):
        assert html("<p>{}</p>", gettext_lazy("<Filter>")) == "<p>&lt;Filter&gt;</p>"


def test_csrf_input_is_what_the_csrf_token_tag_writes():
    request = RequestFactory().get("/")
    written = str(csrf_input(request))
    tag = TEMPLATES.from_string("{% csrf_token %}").render({}, request)
    head, value = written.rsplit('value="', 1)
    assert tag.startswith(head) and tag.endswith('">')
    # Two masks of the request's one secret: the middleware accepts either.
    assert _unmask_cipher_token(value[:-2]) == _unmask_cipher_token(
        tag.rsplit('value="', 1)[1][:-2]
    )


def test_a_status_badge_is_written_once_per_language_and_stays_escaped():
    """`status_badge` keeps the badges of text alone per language: the same badge twice is
    one object, the other language's is its own, and a note is still escaped."""
    from portal.templatetags.portal_i18n import _write_badge, status_badge

    compile_catalog()
    with translation.override("en"):
        english = status_badge("failed", 'a "b" <c>')
        assert status_badge("failed", 'a "b" <c>') is english
        assert english == _write_badge("failed", 'a "b" <c>')
        assert 'title="a &quot;b&quot; &lt;c&gt;"' in english and ">failed<" in english
    with translation.override("zh-hans"):
        chinese = status_badge("failed", 'a "b" <c>')
        assert chinese != english and chinese == _write_badge("failed", 'a "b" <c>')
    lazy_note = status_badge("failed", gettext_lazy("failed"))  # not text: written each time
    assert lazy_note == _write_badge("failed", "failed")
