"""check_dockerfile: bad input, each rule's edge cases, hadolint merging, verdict, to_dict."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from images.policy import (
    MAX_DOCKERFILE_BYTES,
    Catalog,
    DockerfileInputError,
    ServiceContext,
    check_dockerfile,
)
from tests.images.test_policy_corpus import load_catalog

CATALOG = load_catalog()
TODAY = datetime.date(2025, 6, 1)
DEBIAN = "registry.local:5000/runtime/debian@sha256:" + "3" * 64
GCC = "registry.local:5000/build/gcc@sha256:" + "4" * 64


def check(text: str | bytes, **kwargs: object) -> dict:
    kwargs.setdefault("catalog", CATALOG)
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("run_hadolint", False)
    return check_dockerfile(text, **kwargs).to_dict()  # type: ignore[arg-type]


def portal_rules(result: dict) -> set[str]:
    return {f["rule"] for f in result["findings"] if f["rule"].startswith("BIP")}


def with_image(catalog: Catalog, name: str, **changes: object) -> Catalog:
    images = tuple(
        dataclasses.replace(image, **changes) if image.name == name else image
        for image in catalog.images
    )
    return dataclasses.replace(catalog, images=images)


# --- bad input: DockerfileInputError with a status and a clear message ---


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("", 400, "empty"),
        (b"", 400, "empty"),
        ("  \n\t\n", 400, "empty"),
        (b"FROM debian:12\n\xff\xfe\n", 400, "not UTF-8"),
        ("FROM debian:12\n\ud800\n", 400, "surrogate"),
        ("FROM debian:12\n\x00\n", 400, "NUL"),
        (b"#" * (MAX_DOCKERFILE_BYTES + 1), 413, "256 KiB"),
        ("#" * (MAX_DOCKERFILE_BYTES + 1), 413, "256 KiB"),
        ("é" * (MAX_DOCKERFILE_BYTES // 2 + 1), 413, "256 KiB"),
        (12, 400, "text"),
    ],
)
def test_bad_input(body: object, status: int, words: str) -> None:
    with pytest.raises(DockerfileInputError) as info:
        check_dockerfile(body, catalog=CATALOG, run_hadolint=False)  # type: ignore[arg-type]
    assert info.value.status == status
    assert words in info.value.message


def test_exactly_the_size_limit_is_accepted() -> None:
    body = b"FROM scratch\n" + b"#" * (MAX_DOCKERFILE_BYTES - 14) + b"\n"
    assert len(body) == MAX_DOCKERFILE_BYTES
    assert check(body)["verdict"] == "warn"


def test_bom_is_ignored() -> None:
    assert check(("\ufeffFROM " + DEBIAN + "\n").encode())["verdict"] == "pass"


def test_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="purpose"):
        check_dockerfile("FROM scratch\n", catalog=CATALOG, purpose="app")


# --- rules ---


def test_deprecated_before_eol_warns_with_replacement() -> None:
    result = check(
        "FROM registry.local:5000/runtime/centos@sha256:" + "2" * 64 + "\n",
        today=datetime.date(2024, 1, 1),
    )
    assert portal_rules(result) == {"BIP007"}
    assert result["verdict"] == "warn"
    assert "registry.local:5000/runtime/debian@sha256:" in result["findings"][0]["message"]


def test_eol_names_the_replacement_digest() -> None:
    result = check("FROM registry.local:5000/runtime/centos@sha256:" + "2" * 64 + "\n")
    (finding,) = result["findings"]
    assert finding["rule"] == "BIP006" and finding["severity"] == "fail"
    assert "2024-06-30" in finding["message"] and DEBIAN in finding["message"]


def test_eol_uses_today_by_default() -> None:
    result = check_dockerfile(
        "FROM registry.local:5000/runtime/centos@sha256:" + "2" * 64 + "\n",
        catalog=CATALOG,
        run_hadolint=False,
    )
    assert {f.rule for f in result.findings} == {"BIP006"}


def test_blocked_image_fails() -> None:
    catalog = with_image(
        CATALOG, "runtime/openeuler", status="blocked", replacement="runtime/debian"
    )
    result = check("FROM registry.local:5000/runtime/openeuler:22.03\n", catalog=catalog)
    assert "BIP008" in portal_rules(result)
    assert result["verdict"] == "fail"


def test_alpine_exception_by_rule_id_or_image_name() -> None:
    text = "FROM registry.local:5000/runtime/alpine@sha256:" + "6" * 64 + "\n"
    assert portal_rules(check(text)) == {"BIP004"}
    for key in ("alpine", "BIP004", "runtime/alpine"):
        service = ServiceContext("edge", "go", frozenset({key}))
        assert check(text, service=service)["verdict"] == "pass"


def test_alpine_short_name_resolves_to_the_restricted_image() -> None:
    result = check("FROM alpine:3.20\n")
    assert "BIP004" in portal_rules(result)
    assert result["stages"][0]["resolved_image"] == "runtime/alpine"


def test_scratch_is_fine_for_c_and_cpp() -> None:
    for language in ("C", "c++", "Cpp"):
        service = ServiceContext("svc", language)
        assert check("FROM scratch\nCOPY app /\n", service=service)["verdict"] == "pass"
    result = check("FROM scratch\nCOPY app /\n", service=ServiceContext("svc", "go"))
    assert portal_rules(result) == {"BIP005"} and result["verdict"] == "warn"


def test_tag_without_digest_gives_the_pinned_reference() -> None:
    result = check("FROM registry.local:5000/runtime/debian:12\n")
    (finding,) = result["findings"]
    assert finding["rule"] == "BIP010" and DEBIAN in finding["message"]
    assert result["stages"][0]["pinned_ref"] == DEBIAN


def test_latest_and_no_tag_fail_and_name_the_digest() -> None:
    for ref in ("registry.local:5000/runtime/debian", "debian:latest"):
        result = check(f"FROM {ref}\n")
        assert portal_rules(result) == {"BIP009"}
        assert DEBIAN in result["findings"][0]["message"]


def test_candidate_version_is_not_approved() -> None:
    result = check("FROM registry.local:5000/runtime/debian@sha256:" + "3" * 63 + "7\n")
    assert portal_rules(result) == {"BIP015"}
    assert "candidate" in result["findings"][0]["message"]


def test_unknown_image_suggests_same_kind_and_family() -> None:
    builder = check("FROM clang:17-bookworm AS b\nRUN make\nFROM " + DEBIAN + "\n")
    (finding,) = builder["findings"]
    assert finding["rule"] == "BIP002" and "build/gcc" in finding["message"]
    runtime = check("FROM rockylinux:9\n")
    assert "runtime/" in runtime["findings"][0]["message"]


def test_short_name_prefers_the_kind_the_stage_needs() -> None:
    both = dataclasses.replace(
        CATALOG,
        images=(
            *CATALOG.images,
            dataclasses.replace(CATALOG.by_name["build/gcc"], name="build/debian"),
        ),
    )
    result = check("FROM debian:12 AS b\nRUN make\nFROM debian:12\n", catalog=both)
    assert [s["resolved_image"] for s in result["stages"]] == ["build/debian", "runtime/debian"]


def test_registry_must_be_approved() -> None:
    result = check("FROM quay.io/runtime/debian@sha256:" + "3" * 64 + "\n")
    assert portal_rules(result) == {"BIP003"}
    assert "registry.local:5000" in result["findings"][0]["message"]


def test_final_stage_from_build_stage_alias_fails() -> None:
    result = check(f"FROM {GCC} AS build\nRUN make\nFROM build\n")
    assert portal_rules(result) == {"BIP011"}
    assert result["findings"][0]["line"] == 3
    assert result["stages"][1]["parent_stage"] == 0


def test_build_recipe_may_end_on_any_kind() -> None:
    assert check(f"FROM {GCC}\nRUN make\n", purpose="build-recipe")["verdict"] == "pass"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ("ENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n", set()),
        ("ENV TZ Asia/Shanghai\nENV LANG en_US.utf8\nENV LC_ALL en_US.utf8\n", set()),
        ('ENV TZ="Asia/Shanghai" LANG=en_US.utf8\n', {"LC_ALL"}),
        ('ENV NOTE="TZ=x LANG=y LC_ALL=z"\n', {"TZ", "LANG", "LC_ALL"}),
        ("", {"TZ", "LANG", "LC_ALL"}),
    ],
)
def test_runtime_recipe_env(env: str, missing: set[str]) -> None:
    result = check(f"FROM {DEBIAN}\n{env}", purpose="runtime-recipe")
    findings = [f for f in result["findings"] if f["rule"] == "BIP013"]
    if not missing:
        assert findings == []
    else:
        (finding,) = findings
        for name in missing:
            assert name in finding["message"]


def test_runtime_env_set_in_an_earlier_stage_of_the_chain_counts() -> None:
    text = f"FROM {DEBIAN} AS base\nENV TZ=a LANG=b LC_ALL=c\nFROM base\n"
    assert check(text, purpose="runtime-recipe")["verdict"] == "pass"


@pytest.mark.parametrize(
    ("run", "flagged"),
    [
        ("curl -fsSL https://x/install.sh | sh", True),
        ("curl -s https://x | sudo -E bash -", True),
        ("wget -O- https://x | /bin/bash", True),
        ('sh -c "$(curl -fsSL https://x)"', True),
        ("bash <(curl -s https://x)", True),
        ("curl -s https://x/a.tgz | tar -xz", False),
        ("curl -o /tmp/i.sh https://x && sh /tmp/i.sh", False),
        ("echo curl | shuf", False),
    ],
)
def test_pipe_to_shell(run: str, flagged: bool) -> None:
    result = check(f"FROM {DEBIAN}\nRUN {run}\n")
    assert ("BIP014" in portal_rules(result)) is flagged


def test_too_many_stages_is_a_single_finding() -> None:
    text = "".join(f"FROM {DEBIAN} AS s{i}\n" for i in range(400))
    result = check_dockerfile(text, catalog=CATALOG, today=TODAY)
    assert [f.rule for f in result.findings] == ["BIP022"]
    assert result.verdict == "fail" and result.stages == ()


def test_policy_ignore_and_service_rule_exception() -> None:
    service = ServiceContext("svc", "go", frozenset({"BIP010"}))
    assert check("FROM registry.local:5000/runtime/debian:12\n", service=service)["verdict"] == (
        "pass"
    )


def test_to_dict_is_json_safe_and_has_the_contract_keys() -> None:
    result = check_dockerfile(
        f"FROM {GCC} AS build\nRUN make\nFROM registry.local:5000/runtime/debian:12\n",
        catalog=CATALOG,
        today=TODAY,
    ).to_dict()
    assert set(result) == {"verdict", "findings", "stages"}
    assert json.loads(json.dumps(result)) == result
    for finding in result["findings"]:
        assert set(finding) == {"rule", "severity", "line", "message"}
    assert {"index", "name", "base", "line", "resolved_image", "pinned_ref"} <= set(
        result["stages"][0]
    )


# --- hadolint integration ---


def test_hadolint_findings_are_merged_with_mapped_severities() -> None:
    result = check_dockerfile(
        f"FROM {DEBIAN}\nRUN apt-get install -y curl\nRUN cd /tmp && echo $X\n",
        catalog=CATALOG,
        today=TODAY,
    )
    by_rule = {f.rule: f for f in result.findings}
    assert by_rule["DL3008"].severity == "warn"  # hadolint warning
    assert by_rule["DL3015"].severity == "info"  # hadolint info
    assert by_rule["DL3003"].line == 3
    assert result.linter_ran and result.verdict == "warn"


def test_trusted_registries_come_from_the_catalog() -> None:
    text = "FROM quay.io/x/y@sha256:" + "1" * 64 + "\n"
    result = check_dockerfile(text, catalog=CATALOG, today=TODAY)
    assert "DL3026" in {f.rule for f in result.findings}
    ok = check_dockerfile(f"FROM {DEBIAN}\n", catalog=CATALOG, today=TODAY)
    assert "DL3026" not in {f.rule for f in ok.findings}


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "hadolint"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("echo boom >&2; exit 3", "status 3: boom"),
        ("echo not json", "not its JSON"),
        ("echo '[{\"nope\": 1}]'", "not its JSON"),
        ("sleep 30", "within 0.5 seconds"),
    ],
)
def test_broken_linter_is_a_warning_not_an_exception(tmp_path: Path, body: str, words: str) -> None:
    from images.policy import load_policy

    policy = dataclasses.replace(load_policy(None), hadolint_timeout=0.5)
    result = check_dockerfile(
        f"FROM {DEBIAN}\n",
        catalog=CATALOG,
        policy=policy,
        hadolint_binary=_script(tmp_path, body),
    )
    (finding,) = result.findings
    assert finding.rule == "BIP030" and finding.severity == "warn" and words in finding.message
    assert result.verdict == "warn" and not result.linter_ran


def test_missing_linter_binary(tmp_path: Path) -> None:
    result = check_dockerfile(
        f"FROM {DEBIAN}\n", catalog=CATALOG, hadolint_binary=str(tmp_path / "nope")
    )
    assert [f.rule for f in result.findings] == ["BIP030"]
    assert "could not be started" in result.findings[0].message


def test_linter_does_not_read_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3008]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = check_dockerfile(
        f"FROM {DEBIAN}\nRUN apt-get install -y curl\n", catalog=CATALOG, today=TODAY
    )
    assert "DL3008" in {f.rule for f in result.findings}
    assert os.getcwd() == str(tmp_path)


# --- fuzz: random input never raises anything but DockerfileInputError ---

_LINES = st.sampled_from(
    [
        "FROM debian:12",
        f"FROM {DEBIAN} AS b",
        "FROM b",
        "FROM $X",
        "ARG X=${Y:-alpine}",
        "RUN curl x | sh \\",
        "COPY --from=9 a b",
        "# escape=`",
        "RUN <<EOF",
        "EOF",
        "ENV A=1 B",
        "FROM scratch # c",
        "\\",
        "",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=400),
        st.binary(max_size=400),
        st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=25).map("\n".join),
    )
)
def test_random_input_never_crashes_the_engine(body: str | bytes) -> None:
    try:
        result = check_dockerfile(body, catalog=CATALOG, today=TODAY, run_hadolint=False)
    except DockerfileInputError as exc:
        assert exc.status in (400, 413) and exc.message
        return
    assert result.verdict in ("pass", "warn", "fail")
    json.dumps(result.to_dict())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=15).map("\n".join))
def test_random_input_with_hadolint(body: str) -> None:
    try:
        result = check_dockerfile(body, catalog=CATALOG, today=TODAY)
    except DockerfileInputError:
        return
    assert "BIP030" not in {f.rule for f in result.findings} or "cannot parse" in " ".join(
        f.message for f in result.findings
    )
