"""`{% scan_summary %}`: a version's scan state and open findings, in the reader's language."""

import pytest
from django.template import engines
from django.utils import translation

from images.templatetags.catalog_notes import scan_summary
from tests.i18n_support import compile_catalog

TAG = engines["django"].from_string(
    "{% load catalog_notes %}{% scan_summary state summary error %}"
)


def _render(state, summary=None, error=""):
    return TAG.render({"state": state, "summary": summary, "error": error}).strip()


def test_unscanned_and_failed_say_so_with_the_error_as_the_title():
    assert _render("unscanned") == '<span class="badge badge-unscanned" title="">not scanned</span>'
    failed = _render("failed", error="Timed out after 30 s.")
    assert failed == (
        '<span class="badge badge-failed" title="Timed out after 30 s.">scan failed</span>'
    )


def test_a_scan_with_open_findings_counts_them_most_severe_first():
    cell = _render(
        "scanned", {"open": 5, "critical": 1, "high": 0, "medium": 3, "low": 1, "fixable": 2}
    )
    assert cell == (
        '<span class="badge badge-scanned" title="">scanned</span>'
        ' <span class="badge badge-critical" title="critical">1 C</span>'
        ' <span class="badge badge-medium" title="medium">3 M</span>'
        ' <span class="badge badge-low" title="low">1 L</span>'
        ' <small class="muted">5 open, 2 fixable</small>'
    )


@pytest.mark.parametrize("summary", [None, {}, {"open": 0, "low": 0}])
def test_a_clean_scan_says_no_open_findings(summary):
    assert _render("scanned", summary).endswith('<small class="muted">no open findings</small>')


def test_a_running_scan_shows_its_state_alone():
    assert _render("scanning") == '<span class="badge badge-scanning" title="">scanning</span>'


def test_what_it_shows_is_escaped():
    assert "&lt;x&gt;" in str(scan_summary("<x>", None))


def test_it_speaks_chinese():
    compile_catalog()
    with translation.override("zh-hans"):
        cell = _render("scanned", {"open": 2, "high": 2, "fixable": 0})
        unscanned = _render("unscanned")
    assert (
        'title="高危">高危 2</span>' in cell and '<small class="muted">2 个未关闭</small>' in cell
    )
    assert ">not scanned<" not in unscanned
