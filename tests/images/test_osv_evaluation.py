"""OSV evaluation (images.vulns.osv) as the schema's "Evaluation" section defines it: pure,
no database."""

from __future__ import annotations

from typing import Any

import pytest

from images.vulns.osv import evaluate


def eco(*events: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"type": "ECOSYSTEM", "events": [{kind: value} for kind, value in events]}]


def deb(version: str, ranges: Any, **kw: Any) -> tuple[bool, str, str, str]:
    r = evaluate(ecosystem="Debian:12", version=version, ranges=ranges, **kw)
    return r.affected, r.fixed_version, r.fix_state, r.needs_review


@pytest.mark.parametrize(
    ("version", "want"),
    [
        ("0.9", (True, "1.0", "fixed", "")),
        ("1.0~rc1", (True, "1.0", "fixed", "")),  # ~ sorts before the release
        ("1.0", (False, "", "unknown", "")),
        ("1.0+deb12u1", (False, "", "unknown", "")),
    ],
)
def test_introduced_zero_fixed(version: str, want: tuple[bool, str, str, str]) -> None:
    assert deb(version, eco(("introduced", "0"), ("fixed", "1.0"))) == want


def test_events_are_sorted_by_version_not_by_position() -> None:
    ranges = eco(("fixed", "2.0"), ("introduced", "1.5"), ("fixed", "1.2"), ("introduced", "0"))
    assert deb("1.1", ranges)[:2] == (True, "1.2")
    assert deb("1.3", ranges)[0] is False
    assert deb("1.7", ranges)[:2] == (True, "2.0")
    assert deb("2.0", ranges)[0] is False


def test_last_affected_is_inclusive() -> None:
    ranges = eco(("introduced", "1.0"), ("last_affected", "1.4"))
    assert deb("1.4", ranges)[:3] == (True, "", "unknown")
    assert deb("1.4-1", ranges)[0] is False
    assert deb("0.9", ranges)[0] is False


def test_limit_ends_the_range() -> None:
    ranges = eco(("introduced", "0"), ("limit", "3.0"))
    assert deb("2.9", ranges)[0] is True
    assert deb("3.0", ranges)[0] is False
    assert deb("3.1", ranges)[0] is False


def test_open_range_is_not_fixed() -> None:
    assert deb("5", eco(("introduced", "2")))[:3] == (True, "", "not_fixed")


def test_two_ranges_and_lowest_fix_above() -> None:
    ranges = eco(("introduced", "0"), ("fixed", "1.5")) + eco(
        ("introduced", "1.0"), ("fixed", "1.3")
    )
    assert deb("1.1", ranges)[:2] == (True, "1.3")


def test_enumerated_versions() -> None:
    assert deb("1.2-1", [], versions=["1.2-1", "1.3-1"])[:3] == (True, "", "unknown")
    assert deb("1.2-2", [], versions=["1.2-1"])[0] is False
    assert deb("0:1.2-1", [], versions=["1.2-1"])[0] is True  # equal under dpkg's rules


def test_git_ranges_are_never_matched() -> None:
    ranges = [
        {"type": "GIT", "repo": "https://x", "events": [{"introduced": "0"}, {"fixed": "abc"}]}
    ]
    assert deb("1.0", ranges) == (False, "", "unknown", "")


def test_semver_range_in_any_ecosystem() -> None:
    ranges = [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]}]
    r = evaluate(ecosystem="npm", version="1.2.2", ranges=ranges)
    assert (r.affected, r.fixed_version) == (True, "1.2.3")


def test_unparsable_versions_need_review() -> None:
    assert deb("x", eco(("introduced", "0"), ("fixed", "1.0")))[3]
    assert deb("1.0", eco(("introduced", "0"), ("fixed", "bad version")))[3]
    unknown = evaluate(ecosystem="Hackage", version="1", ranges=eco(("introduced", "0")))
    assert unknown.needs_review and not unknown.affected
    # ...unless another range already says affected.
    ranges = eco(("introduced", "0"), ("fixed", "bad version")) + eco(("introduced", "0"))
    assert deb("1.0", ranges)[:2] == (True, "")


def test_fix_state_hints() -> None:
    ranges = eco(("introduced", "0"), ("fixed", "2.0"))
    assert deb("1.0", ranges, ecosystem_specific={"urgency": "unimportant"})[2] == "not_affected"
    assert deb("1.0", ranges, ecosystem_specific={"urgency": "end-of-life"})[2] == "wont_fix"
    assert deb("1.0", ranges, ecosystem_specific={"status": "will_not_fix"})[2] == "wont_fix"
    assert deb("1.0", ranges, ecosystem_specific={"urgency": "low"})[2] == "fixed"
    # A hint never makes an unaffected version affected.
    assert deb("3.0", ranges, ecosystem_specific={"urgency": "unimportant"})[0] is False
