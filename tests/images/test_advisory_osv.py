"""OSV record validation and severity (pure: no database)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from images.advisories.osv import OsvError, ecosystem_quarantine_reason, parse_record
from images.advisories.severity import (
    SeverityEntry,
    affected_severity,
    cvss_score,
    record_severity,
    word_rating,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "osv" / "import"


def test_parses_a_debian_security_advisory() -> None:
    record = parse_record((FIXTURES / "good/debian/DSA-5532-1.json").read_bytes())
    assert record.id == "DSA-5532-1"
    assert record.modified.isoformat() == "2024-01-10T08:00:00+00:00"
    assert record.aliases == ("CVE-2023-5363", "CVE-2023-5678")
    (affected,) = record.affected
    assert (affected.ecosystem, affected.name, affected.quarantined) == ("Debian:12", "openssl", "")
    assert affected.ranges[0]["events"][1] == {"fixed": "3.0.11-1~deb12u2"}
    assert len(record.sha256) == 64


def test_the_digest_ignores_key_order_and_whitespace() -> None:
    text = (FIXTURES / "good/go/GO-2024-2687.json").read_text()
    reordered = json.dumps(dict(reversed(list(json.loads(text).items()))))
    assert parse_record(text).sha256 == parse_record(reordered).sha256


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed.json", "malformed JSON"),
        ("no-id.json", "no 'id'"),
        ("no-modified.json", "no 'modified'"),
        ("bad-timestamp.json", "not an RFC 3339 timestamp"),
        ("no-timezone.json", "no time zone"),
        ("fixed-and-last-affected.json", "both 'fixed' and 'last_affected'"),
        ("no-introduced.json", "no 'introduced' event"),
        ("unknown-range-type.json", "unknown range type 'RPM'"),
        ("not-an-object.json", "must be a JSON object"),
    ],
)
def test_bad_records_say_why(name: str, reason: str) -> None:
    with pytest.raises(OsvError) as caught:
        parse_record((FIXTURES / "bad" / name).read_bytes())
    assert reason in str(caught.value)


def test_an_oversized_record_is_refused_before_parsing() -> None:
    data = (FIXTURES / "good/debian/DSA-5532-1.json").read_bytes()
    with pytest.raises(OsvError, match="the limit is 100 bytes"):
        parse_record(data, max_bytes=100)
    with pytest.raises(OsvError, match="the limit is 100 bytes"):
        parse_record(json.loads(data), max_bytes=100)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "aliases": "CVE-1"}, "must be a list"),
        ({"id": "X 1", "modified": "2024-01-01T00:00:00Z"}, "without spaces"),
        ({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "summary": 5}, "must be a string"),
        ({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [3]}, "must be an object"),
        (
            {
                "id": "X-1",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"ecosystem": "Go", "name": "x"},
                        "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}],
                    }
                ],  # noqa: E501
            },
            "without 'repo'",
        ),
        (
            {
                "id": "X-1",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"ecosystem": "Go", "name": "x"},
                        "ranges": [
                            {"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1"}]}
                        ],
                    }
                ],  # noqa: E501
            },
            "one key",
        ),
        (
            {"id": "X-1", "modified": "2024-01-01T00:00:00Z", "schema_version": "2.0.0"},
            "unsupported schema_version '2.0.0'",
        ),
        (
            {"id": "X-1", "modified": "2024-01-01T00:00:00Z", "withdrawn": "soon"},
            "'withdrawn' is not",
        ),
        (
            {
                "id": "X-1",
                "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Go", "name": "x" * 300}}],
            },  # noqa: E501
            "longer than 255",
        ),
    ],
)
def test_more_bad_shapes(record: dict, reason: str) -> None:
    with pytest.raises(OsvError, match=reason):
        parse_record(record)


@pytest.mark.parametrize(
    ("ecosystem", "quarantined"),
    [
        ("Debian:12", False),
        ("Ubuntu:22.04:LTS", False),
        ("Ubuntu:Pro:18.04:LTS", False),
        ("Alpine:v3.20", False),
        ("Rocky Linux:9", False),
        ("AlmaLinux:9", False),
        ("openEuler:22.03-LTS-SP3", False),
        ("Red Hat:enterprise_linux:9::appstream", False),
        ("Go", False),
        ("PyPI", False),
        ("npm", False),
        ("crates.io", False),
        ("Maven", False),
        ("Debian", True),
        ("Debian:", True),
        ("Ubuntu", True),
        ("Alpine", True),
        ("Rocky Linux", True),
        ("AlmaLinux", True),
        ("openEuler", True),
        ("Made Up OS:1", True),
        ("", True),
    ],
)
def test_distro_ecosystems_need_a_release(ecosystem: str, quarantined: bool) -> None:
    assert bool(ecosystem_quarantine_reason(ecosystem)) is quarantined


def test_an_unsuffixed_entry_is_quarantined_not_the_record() -> None:
    record = parse_record((FIXTURES / "quarantine/DEBIAN-CVE-2024-0727.json").read_bytes())
    reasons = [a.quarantined for a in record.affected]
    assert "no release suffix" in reasons[0]
    assert reasons[1] == ""
    assert "'Rocky Linux' has no release suffix" in reasons[2]


# --- severity --------------------------------------------------------------------------------

V31_CRIT = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


@pytest.mark.parametrize(
    ("kind", "vector", "rating", "score"),
    [
        ("CVSS_V3", V31_CRIT, "critical", "9.8"),  # CVE-2021-44228 (log4shell) is 10.0 with S:C
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "critical", "10.0"),
        (
            "CVSS_V3",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
            "high",
            "7.5",
        ),  # CVE-2023-44487
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", "medium", "5.5"),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", "low", "3.1"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "none", "0.0"),
        (
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "critical",
            "9.3",
        ),
        (
            "CVSS_V4",
            "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N",
            "medium",
            "5.3",  # GHSA-9wx4-h78v-vm56 (requests); FIRST's v4 lookup table via cvss 3.6
        ),
    ],
)
def test_cvss_vectors(kind: str, vector: str, rating: str, score: str) -> None:
    result = cvss_score(SeverityEntry(kind, vector))
    assert result is not None
    assert (result.rating, result.score, result.vector) == (rating, Decimal(score), vector)


@pytest.mark.parametrize(
    "entry",
    [
        SeverityEntry("CVSS_V3", "CVSS:3.1/AV:N"),
        SeverityEntry("CVSS_V3", "not a vector"),
        SeverityEntry("CVSS_V4", "CVSS:4.0/AV:N"),
        SeverityEntry("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
    ],
)
def test_unusable_vectors_are_skipped(entry: SeverityEntry) -> None:
    assert cvss_score(entry) is None


def test_v4_is_preferred_over_v3() -> None:
    both = [
        SeverityEntry("CVSS_V3", V31_CRIT),
        SeverityEntry("CVSS_V4", "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N"),
    ]
    result = record_severity(both, [])
    assert (result.rating, result.source) == ("medium", "cvss_v4")
    # a broken v4 falls back to the v3 vector
    broken = [SeverityEntry("CVSS_V4", "CVSS:4.0/garbage"), both[0]]
    assert record_severity(broken, []).source == "cvss_v3"


@pytest.mark.parametrize(
    ("word", "rating"),
    [
        ("high", "high"),
        ("medium", "medium"),
        ("low", "low"),
        ("unimportant", "low"),
        ("negligible", "low"),
        ("Important", "high"),
        ("Moderate", "medium"),
        ("CRITICAL", "critical"),
        ("not yet assigned", "unknown"),
        ("end-of-life", "unknown"),
        (None, "unknown"),
        (3, "unknown"),
    ],
)
def test_ecosystem_words(word: object, rating: str) -> None:
    assert word_rating(word) == rating


def test_the_ecosystem_hint_is_used_without_a_vector() -> None:
    debian = affected_severity((), {"urgency": "unimportant"}, {})
    assert (debian.rating, debian.score, debian.source) == ("low", None, "urgency")
    ubuntu = record_severity([SeverityEntry("Ubuntu", "medium")], [])
    assert (ubuntu.rating, ubuntu.source) == ("medium", "ubuntu")
    rocky = record_severity((), [], {"severity": "Moderate"})
    assert rocky.rating == "medium"
    # the worst affected hint wins; a vector in an affected entry beats every word
    two = [((), {"urgency": "low"}, {}), ((), {"urgency": "high"}, {})]
    assert record_severity((), two).rating == "high"
    scored = [((SeverityEntry("CVSS_V3", V31_CRIT),), {"urgency": "low"}, {})]
    assert record_severity((), scored).score == Decimal("9.8")
    assert record_severity((), []).rating == "unknown"


# --- any input: a record or an OsvError, never another exception ----------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_events = st.lists(
    st.dictionaries(
        st.sampled_from(["introduced", "fixed", "last_affected", "limit", "x"]),
        st.text(max_size=5) | st.integers(),
        min_size=0,
        max_size=2,
    ),
    max_size=4,
)
_affected = st.fixed_dictionaries(
    {
        "package": st.fixed_dictionaries(
            {
                "ecosystem": st.sampled_from(["Debian", "Debian:12", "Go", "", "X"]) | _json,
                "name": st.text(max_size=10) | _json,
            }
        ),
        "ranges": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["SEMVER", "ECOSYSTEM", "GIT", "RPM"]), "events": _events}
            ),
            max_size=3,
        )
        | _json,
        "versions": st.lists(st.text(max_size=5)) | _json,
    }
)
_records = st.fixed_dictionaries(
    {
        "id": st.text(max_size=12) | _json,
        "modified": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "x", ""]) | _json,
    },
    optional={
        "aliases": st.lists(st.text(max_size=8)) | _json,
        "affected": st.lists(_affected, max_size=3) | _json,
        "severity": st.lists(
            st.fixed_dictionaries({"type": st.text(max_size=8), "score": st.text(max_size=20)})
        )
        | _json,  # noqa: E501
        "withdrawn": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(record=_records | _json)
def test_any_input_is_a_record_or_a_clear_error(record: object) -> None:
    try:
        parsed = parse_record(record if isinstance(record, dict) else json.dumps(record))  # type: ignore[arg-type]
    except OsvError as exc:
        assert str(exc)
        return
    except ValueError as exc:  # json.dumps of NaN gives "NaN", refused as not JSON
        raise AssertionError(f"not an OsvError: {exc!r}") from exc
    assert parsed.id and parsed.modified.tzinfo is not None
    record_severity(
        parsed.severity,
        [(a.severity, a.ecosystem_specific, a.database_specific) for a in parsed.affected],
    )  # noqa: E501


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_are_a_record_or_a_clear_error(data: bytes) -> None:
    try:
        parse_record(data)
    except OsvError:
        pass


def test_an_affected_hint_never_overrides_the_records_own_vector() -> None:
    # DSA-style: a Critical CVSS vector on the record, Debian urgency "high" on the entry —
    # the entry has no severity of its own, so findings take the record's Critical.
    hinted = affected_severity((), {"urgency": "high"}, {}, record_scored=True)
    assert hinted.rating == "unknown"
    own = affected_severity(
        (SeverityEntry("CVSS_V3", V31_CRIT),), {"urgency": "low"}, {}, record_scored=True
    )
    assert own.rating == "critical"
