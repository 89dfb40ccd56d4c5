"""POST /api/v1/dockerfile-checks/: verdicts, SARIF, every bad input, auth, random bodies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from deployments.models import Service
from images.api.views import MAX_CHECK_BODY_BYTES
from images.catalog_cache import policy_catalog_clear
from images.models import BaseImage
from images.policy import MAX_DOCKERFILE_BYTES
from portal.models import Team
from tests.images.factories import ImageVersionFactory

URL = "/api/v1/dockerfile-checks/"
HOST = "127.0.0.1:5000"  # the demo registry (settings.PORTAL_DEFAULT_REGISTRY_URL)
GCC = "sha256:" + "4" * 64
DEBIAN = "sha256:" + "3" * 64
OLD_DEBIAN = "sha256:" + "2" * 64

PASSING = f"""\
FROM {HOST}/build/gcc@{GCC} AS builder
WORKDIR /src
COPY . .
RUN make build

FROM {HOST}/runtime/debian@{DEBIAN}
COPY --from=builder /src/bin/app /usr/local/bin/app
USER 65534
ENTRYPOINT ["/usr/local/bin/app"]
"""
WARNING = f'FROM {HOST}/runtime/debian:12\nUSER 65534\nENTRYPOINT ["/app"]\n'
FAILING = 'FROM alpine:3.20\nUSER 65534\nENTRYPOINT ["/app"]\n'


@pytest.fixture(autouse=True)
def _fresh_catalog_cache(settings: object) -> Iterator[None]:
    # seed_demo creates two users: PBKDF2 would cost ~1 s per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    policy_catalog_clear()
    yield
    policy_catalog_clear()


@pytest.fixture
def catalog(demo_catalog: None) -> None:
    """The demo catalog plus approved versions of build/gcc and runtime/debian."""
    ImageVersionFactory(base_image=BaseImage.objects.get(name="build/gcc"), tag="12", digest=GCC)
    debian = BaseImage.objects.get(name="runtime/debian")
    ImageVersionFactory(base_image=debian, tag="12.1", digest=OLD_DEBIAN, state="superseded")
    ImageVersionFactory(base_image=debian, tag="12", digest=DEBIAN)


@pytest.fixture
def client(catalog: None, make_token: object) -> APIClient:
    team = Team.objects.get(name="payments")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(team, ['dockerfile:check'])}")
    return api


def post_json(client: APIClient, body: object, query: str = "") -> object:
    return client.post(URL + query, data=json.dumps(body), content_type="application/json")


def post_raw(client: APIClient, data: bytes, content_type: str = "text/plain") -> object:
    return client.generic("POST", URL, data, content_type=content_type)


def rules(response: object) -> set[str]:
    return {finding["rule"] for finding in response.json()["findings"]}


# --- happy paths ------------------------------------------------------------------------------


def test_pinned_multistage_passes_with_resolved_stages(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": PASSING})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == "pass", body["findings"]
    assert body["findings"] == []
    assert [(s["name"], s["resolved_image"], s["kind"]) for s in body["stages"]] == [
        ("builder", "build/gcc", "build"),
        ("", "runtime/debian", "runtime"),
    ]
    assert body["stages"][1]["pinned_ref"] == f"{HOST}/runtime/debian@{DEBIAN}"


def test_tag_without_digest_warns_with_the_pinned_reference(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": WARNING})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "warn"
    (finding,) = [f for f in body["findings"] if f["rule"] == "BIP010"]
    assert finding["severity"] == "warn" and finding["line"] == 1
    assert f"{HOST}/runtime/debian@{DEBIAN}" in finding["message"]


def test_superseded_digest_warns(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": f"FROM {HOST}/runtime/debian@{OLD_DEBIAN}\n"})
    assert response.status_code == 200
    assert "BIP016" in rules(response)
    assert response.json()["verdict"] in {"warn", "fail"}


def test_unapproved_image_fails_with_status_200(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": FAILING})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "fail"
    assert {"BIP002", "BIP004"} & rules(response), body["findings"]
    assert any("runtime/debian" in f["message"] for f in body["findings"])


def test_eol_centos_fails_naming_the_replacement(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": f"FROM {HOST}/runtime/centos:7\nUSER 1\n"})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "fail"
    (eol,) = [f for f in body["findings"] if f["rule"] == "BIP006"]
    assert "runtime/debian" in eol["message"]


def test_hadolint_findings_are_merged(client: APIClient) -> None:
    text = f"FROM {HOST}/runtime/debian@{DEBIAN}\nRUN apt-get install -y curl\nUSER 1\n"
    response = post_json(client, {"dockerfile": text})
    assert response.status_code == 200
    assert "DL3008" in rules(response) or "DL3015" in rules(response), response.json()


def test_catalog_changes_are_seen_without_a_restart(client: APIClient, settings: object) -> None:
    settings.PORTAL_CATALOG_CACHE_SECONDS = 0
    text = f"FROM {HOST}/runtime/openeuler@sha256:{'5' * 64}\nUSER 1\n"
    assert "BIP017" in rules(post_json(client, {"dockerfile": text}))  # unknown digest
    ImageVersionFactory(
        base_image=BaseImage.objects.get(name="runtime/openeuler"),
        tag="22.03",
        digest="sha256:" + "5" * 64,
    )
    response = post_json(client, {"dockerfile": text})
    assert response.json()["verdict"] == "pass", response.json()


# --- body types ---------------------------------------------------------------------------------


def test_raw_text_plain_body(client: APIClient) -> None:
    response = post_raw(client, WARNING.encode())
    assert response.status_code == 200
    assert response.json()["verdict"] == "warn"


def test_multipart_upload_with_service_field(client: APIClient) -> None:
    upload = SimpleUploadedFile("Dockerfile", PASSING.encode(), content_type="text/plain")
    response = client.post(URL, {"file": upload, "purpose": "service"}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["verdict"] == "pass"


def test_multipart_without_file_is_400(client: APIClient) -> None:
    response = client.post(URL, {"service": "x"}, format="multipart")
    assert response.status_code == 400
    assert "'file'" in response.json()["detail"]


def test_form_body_without_dockerfile_field_explains_text_plain(client: APIClient) -> None:
    response = post_raw(client, WARNING.encode(), "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "text/plain" in response.json()["detail"]


def test_unsupported_content_type_is_415(client: APIClient) -> None:
    response = post_raw(client, b"<x/>", "application/xml")
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_purpose_runtime_recipe_requires_tz_lang(client: APIClient) -> None:
    text = f"FROM {HOST}/runtime/debian@{DEBIAN}\nRUN true\n"
    response = post_json(client, {"dockerfile": text, "purpose": "runtime-recipe"})
    assert response.status_code == 200
    assert "BIP013" in rules(response)


# --- SARIF --------------------------------------------------------------------------------------


def test_sarif_output(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": FAILING}, "?format=sarif&filename=app/Dockerfile")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/sarif+json")
    log = json.loads(response.content)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "base-image-portal"
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert run["results"], "a failing Dockerfile has results"
    for result in run["results"]:
        assert result["ruleId"] == rule_ids[result["ruleIndex"]]
        assert result["level"] in {"error", "warning", "note"}
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "app/Dockerfile"
        assert location["region"]["startLine"] >= 1
    assert any(r["level"] == "error" for r in run["results"])
    assert run["properties"]["verdict"] == "fail"


def test_sarif_by_accept_header(client: APIClient) -> None:
    response = client.post(
        URL,
        data=json.dumps({"dockerfile": PASSING}),
        content_type="application/json",
        HTTP_ACCEPT="application/sarif+json",
    )
    assert response.status_code == 200
    assert json.loads(response.content)["runs"][0]["results"] == []


def test_format_query_wins_over_an_accept_json_header(client: APIClient) -> None:
    # tools/portal-check sends Accept: application/json with ?format=sarif (DRF alone: 406).
    response = client.post(
        URL + "?format=sarif",
        data=json.dumps({"dockerfile": PASSING}),
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert json.loads(response.content)["version"] == "2.1.0"


def test_unknown_format_is_400(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": PASSING}, "?format=xml")
    assert response.status_code == 400
    assert "sarif" in response.json()["detail"]


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "empty"),
        (b"", "text/plain", "empty"),
        (b"   \n\n", "text/plain", "empty"),
        (b"\xff\xfeFROM x\n", "text/plain", "UTF-8"),
        (b'{"dockerfile": "FROM \xff"}', "application/json", "UTF-8"),
        (b"FROM x\x00\n", "text/plain", "NUL"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be an object"),
        (b'"FROM x"', "application/json", "must be an object"),
        (b"{}", "application/json", "dockerfile: This field is required"),
        (b'{"dockerfile": 5}', "application/json", "Must be a string"),
        (b'{"dockerfile": null}', "application/json", "Must be a string"),
        (b'{"dockerfile": ""}', "application/json", "empty"),
        (b'{"dockerfile": "FROM x", "service": 3}', "application/json", "service"),
        (b'{"dockerfile": "FROM x", "purpose": ["x"]}', "application/json", "purpose"),
        (b'{"dockerfile": "FROM x", "purpose": "prod"}', "application/json", "Unknown purpose"),
        (b'{"dockerFile": "FROM x"}', "application/json", "Unknown key"),
        (b'{"dockerfile": "FROM \\ud800"}', "application/json", "surrogate"),
        (b'{"dockerfile": "FROM x", "service": "Not_A_Label"}', "application/json", "DNS-1123"),
        (b"[" * 100_000, "application/json", "JSON"),
    ],
)
def test_bad_input_is_400_with_a_clear_detail(
    client: APIClient, body: bytes, content_type: str, message: str
) -> None:
    response = post_raw(client, body, content_type)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert message in detail, detail
    assert response.json()["code"]


def test_dockerfile_over_256_kib_is_413(client: APIClient) -> None:
    text = "FROM x\n" + "# padding\n" * (MAX_DOCKERFILE_BYTES // 10)
    response = post_json(client, {"dockerfile": text})
    assert response.status_code == 413
    assert "256 KiB" in response.json()["detail"]
    assert post_raw(client, text.encode()).status_code == 413


def test_body_over_the_limit_is_413_before_parsing(client: APIClient) -> None:
    # Not JSON at all: a 413 proves the body was refused on its size, not parsed.
    response = post_raw(client, b"x" * (MAX_CHECK_BODY_BYTES + 1), "application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_lying_content_length_is_refused(client: APIClient) -> None:
    response = client.generic(
        "POST",
        URL,
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(10 * 1024 * 1024),
    )
    assert response.status_code == 413
    response = client.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH="abc"
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


def test_multipart_file_over_256_kib_is_413(client: APIClient) -> None:
    upload = SimpleUploadedFile("Dockerfile", b"FROM x\n" + b"#" * MAX_DOCKERFILE_BYTES)
    response = client.post(URL, {"file": upload}, format="multipart")
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("text", "rule", "line"),
    [
        ("RUN echo hi\n", "BIP001", 1),  # no FROM
        (f"FROM {HOST}/runtime/debian@{DEBIAN}\nFROBNICATE x\n", "BIP020", 2),
        (f"FROM {HOST}/runtime/debian@{DEBIAN}\nRUN echo a && \\\n", "BIP021", 2),
        ("FROM Ubuntu:::bad\n", "BIP023", 1),
        ("FROM ${BASE}\n", "BIP024", 1),
    ],
)
def test_broken_dockerfiles_are_findings(
    client: APIClient, text: str, rule: str, line: int
) -> None:
    response = post_json(client, {"dockerfile": text})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == "fail"
    hits = [f for f in body["findings"] if f["rule"] == rule]
    assert hits, body["findings"]
    assert hits[0]["line"] == line
    assert hits[0]["message"]


def test_hundreds_of_stages(client: APIClient) -> None:
    text = "".join(f"FROM {HOST}/runtime/debian@{DEBIAN} AS s{i}\nRUN true\n" for i in range(300))
    response = post_json(client, {"dockerfile": text})
    assert response.status_code == 200
    assert response.json()["verdict"] == "fail"
    assert "BIP022" in rules(response)


# --- service ------------------------------------------------------------------------------------


def test_unknown_service_is_400(client: APIClient) -> None:
    response = post_json(client, {"dockerfile": PASSING, "service": "no-such-service"})
    assert response.status_code == 400
    assert "Unknown service" in response.json()["detail"]


SCRATCH = f"""\
FROM {HOST}/build/gcc@{GCC} AS builder
RUN make static
FROM scratch
COPY --from=builder /src/app /app
USER 65534
ENTRYPOINT ["/app"]
"""


@pytest.mark.parametrize(("language", "warned"), [("c++", False), ("c", False), ("go", True)])
def test_service_language_decides_scratch(client: APIClient, language: str, warned: bool) -> None:
    Service.objects.create(
        name=f"svc-{language.replace('+', 'p')}",
        team=Team.objects.get(name="payments"),
        language=language,
    )
    name = f"svc-{language.replace('+', 'p')}"
    response = post_json(client, {"dockerfile": SCRATCH, "service": name})
    assert response.status_code == 200, response.content
    assert ("BIP005" in rules(response)) is warned, response.json()


def test_alpine_fails_unless_the_service_has_an_active_exception(client: APIClient) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from deployments.models import PolicyException

    service = Service.objects.create(
        name="legacy", team=Team.objects.get(name="payments"), language="go"
    )
    body = {"dockerfile": FAILING, "service": "legacy"}
    assert "BIP004" in rules(post_json(client, body))
    waiver = PolicyException.objects.create(
        service=service,
        subject="alpine",
        justification="migrating off musl by Q3",
        expires_at=timezone.now() + timedelta(days=30),
    )
    assert "BIP004" not in rules(post_json(client, body))
    waiver.expires_at = timezone.now() - timedelta(days=1)
    waiver.save()
    assert "BIP004" in rules(post_json(client, body))


# --- policy file --------------------------------------------------------------------------------


def test_admin_policy_file_changes_severities(
    client: APIClient, settings: object, tmp_path: object
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("ignore: [BIP010]\n")
    settings.PORTAL_POLICY_FILE = str(policy)
    response = post_json(client, {"dockerfile": WARNING})
    assert response.status_code == 200
    assert "BIP010" not in rules(response)
    assert response.json()["verdict"] == "pass"


@pytest.mark.parametrize("content", ["severities: [", "severities: {BIP010: fatal}\n", None])
def test_broken_policy_file_falls_back_to_defaults_with_a_warning(
    client: APIClient, settings: object, tmp_path: object, content: str | None, caplog: object
) -> None:
    policy = tmp_path / "policy.yaml"
    if content is not None:
        policy.write_text(content)
    settings.PORTAL_POLICY_FILE = str(policy)
    response = post_json(client, {"dockerfile": PASSING})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "warn"
    assert [f["rule"] for f in body["findings"]] == ["BIP031"]
    assert "default policy" in body["findings"][0]["message"]
    assert str(tmp_path) not in json.dumps(body)  # the server path stays in the log
    assert any("Policy file unusable" in r.getMessage() for r in caplog.records)
    fail = post_json(client, {"dockerfile": FAILING}).json()
    assert fail["verdict"] == "fail" and "BIP031" in {f["rule"] for f in fail["findings"]}
    sarif = json.loads(post_json(client, {"dockerfile": PASSING}, "?format=sarif").content)
    (descriptor,) = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert descriptor["id"] == "BIP031" and "policy" in descriptor["shortDescription"]["text"]


# --- auth ---------------------------------------------------------------------------------------


def test_no_credentials_is_401(catalog: None) -> None:
    response = APIClient().post(URL, {"dockerfile": PASSING}, format="json")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


def test_token_without_the_scope_is_403(catalog: None, make_token: object) -> None:
    api = APIClient()
    team = Team.objects.get(name="payments")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(team, ['images:read'])}")
    response = api.post(URL, {"dockerfile": PASSING}, format="json")
    assert response.status_code == 403
    assert "dockerfile:check" in response.json()["detail"]


def test_logged_in_member_may_check(catalog: None, make_user: object) -> None:
    api = APIClient()
    api.force_authenticate(make_user("vera", Team.objects.get(name="payments")))
    response = api.post(URL, {"dockerfile": PASSING}, format="json")
    assert response.status_code == 200


# --- random bodies ------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
DOCKERFILE_LINES = st.lists(
    st.sampled_from(
        [
            "FROM ",
            "FROM alpine",
            f"FROM {HOST}/runtime/debian@{DEBIAN}",
            f"FROM {HOST}/build/gcc:12 AS b",
            "COPY --from=b / /",
            "COPY --from=9 / /",
            "ARG X",
            "FROM ${X}",
            "RUN curl x | sh",
            "RUN a \\",
            "ENV A=1",
            "<<EOF",
            "EOF",
            "# c",
            "",
        ]
    )
    | st.text(max_size=30),
    max_size=12,
).map("\n".join)
BODIES = st.one_of(
    st.tuples(st.binary(max_size=300), st.sampled_from(["application/json", "text/plain"])),
    st.tuples(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.just("application/json")),
    st.tuples(
        st.fixed_dictionaries(
            {"dockerfile": DOCKERFILE_LINES},
            optional={
                "service": st.none() | st.text(max_size=10),
                "purpose": st.sampled_from(["service", "runtime-recipe", "build-recipe", "x"]),
            },
        ).map(lambda v: json.dumps(v).encode()),
        st.just("application/json"),
    ),
    st.tuples(DOCKERFILE_LINES.map(str.encode), st.just("text/plain")),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=BODIES)
def test_random_bodies_never_500(client: APIClient, body: tuple[bytes, str]) -> None:
    data, content_type = body
    response = post_raw(client, data, content_type)
    assert response.status_code in {200, 400, 413}, (response.status_code, response.content)
    payload = response.json()
    if response.status_code == 200:
        assert payload["verdict"] in {"pass", "warn", "fail"}
        assert all(f["line"] >= 1 and f["message"] for f in payload["findings"])
    else:
        assert payload["detail"] and payload["code"]


# --- tools/portal-check against the real endpoint (live server, real token) --------------------

CLIENT = Path(__file__).resolve().parents[2] / "tools" / "portal-check"


@pytest.fixture
def live_portal(
    live_server: object, transactional_db: None, make_token: object, settings: object
) -> dict[str, str]:
    from images.demo import seed_demo

    seed_demo()
    ImageVersionFactory(base_image=BaseImage.objects.get(name="build/gcc"), tag="12", digest=GCC)
    ImageVersionFactory(
        base_image=BaseImage.objects.get(name="runtime/debian"), tag="12", digest=DEBIAN
    )
    token = make_token(Team.objects.get(name="payments"), ["dockerfile:check"])
    return {"PORTAL_URL": live_server.url, "PORTAL_TOKEN": token}


def portal_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_portal_check_exit_codes_and_compiler_output(
    live_portal: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.Dockerfile"
    good.write_text(PASSING)
    warn = tmp_path / "warn.Dockerfile"
    warn.write_text(WARNING)
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(f"FROM {HOST}/runtime/debian@{DEBIAN}\nRUN true\nFROM alpine:3.20\n")

    run = portal_check(live_portal, str(good))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{good}: pass (0 fail, 0 warn, 0 info)"

    run = portal_check(live_portal, str(warn))
    assert run.returncode == 0, run.stderr
    assert f"{warn}:1: warn BIP010 " in run.stdout

    run = portal_check(live_portal, str(bad))
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    pattern = re.compile(
        rf"^{re.escape(str(bad))}:(\d+): (fail|warn|info) ([A-Z]{{2,3}}\d{{3,4}}) \S"
    )
    findings = [pattern.match(line) for line in lines[:-1]]
    assert all(findings), lines
    assert ("3", "fail") in {(m.group(1), m.group(2)) for m in findings}
    assert lines[-1].startswith(f"{bad}: fail (")

    run = portal_check(live_portal, str(good), str(bad))
    assert run.returncode == 1
    assert "2 Dockerfile(s), 1 failed" in run.stdout


def test_portal_check_sarif_and_errors(live_portal: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(FAILING)
    run = portal_check(live_portal, "--format", "sarif", str(bad))
    assert run.returncode == 1, run.stderr
    log = json.loads(run.stdout)
    assert log["version"] == "2.1.0"
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for result in log["runs"][0]["results"]
        for loc in result["locations"]
    }
    assert uris == {str(bad)}

    empty = tmp_path / "empty.Dockerfile"
    empty.write_text("\n")
    run = portal_check(live_portal, str(empty))
    assert run.returncode == 2
    assert "HTTP 400" in run.stderr and "empty" in run.stderr

    run = portal_check({**live_portal, "PORTAL_TOKEN": "bip_0000_nope"}, str(bad))
    assert run.returncode == 2
    assert "HTTP 401" in run.stderr

    run = portal_check({**live_portal, "PORTAL_URL": "http://127.0.0.1:9"}, str(bad))
    assert run.returncode == 2
    assert "cannot reach" in run.stderr


# --- the reader's language (issue 11) ----------------------------------------------------------


@pytest.fixture
def zh_catalog() -> None:
    from tests.i18n_support import compile_catalog

    compile_catalog()


def _message(response: object, rule: str) -> str:
    (finding,) = [f for f in response.json()["findings"] if f["rule"] == rule]
    return finding["message"]


def test_findings_follow_accept_language_and_sarif_stays_english(
    client: APIClient, zh_catalog: None
) -> None:
    body = json.dumps({"dockerfile": WARNING})
    en = client.post(URL, data=body, content_type="application/json")
    zh = client.post(
        URL, data=body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    pinned = f"{HOST}/runtime/debian@{DEBIAN}"
    assert _message(en, "BIP010") == (
        f"FROM {HOST}/runtime/debian:12 is not pinned by digest; use {pinned}."
    )
    assert (
        _message(zh, "BIP010") == f"FROM {HOST}/runtime/debian:12 未按摘要固定；请改用 {pinned}。"
    )
    # A message with a clause inside it: both parts in Chinese.
    failing = json.dumps({"dockerfile": FAILING})
    zh_fail = client.post(
        URL, data=failing, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    restricted = _message(zh_fail, "BIP004")
    assert "受限" in restricted and "请改用" in restricted, restricted
    assert not re.search(r"\b(?:is|use|restricted|exception)\b", restricted), restricted
    # SARIF is for tools: English whatever the header.
    sarif = client.post(
        URL + "?format=sarif",
        data=body,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    ).json()
    texts = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert f"FROM {HOST}/runtime/debian:12 is not pinned by digest; use {pinned}." in texts


def test_an_input_error_detail_follows_accept_language(client: APIClient, zh_catalog: None) -> None:
    body = json.dumps({"dockerfile": "\n"})
    en = client.post(URL, data=body, content_type="application/json")
    zh = client.post(
        URL, data=body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    assert en.status_code == zh.status_code == 400
    assert "The Dockerfile is empty." in json.dumps(en.json())
    assert "该 Dockerfile 为空。" in json.dumps(zh.json(), ensure_ascii=False)
