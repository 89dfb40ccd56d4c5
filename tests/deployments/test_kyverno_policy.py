"""The Kyverno admission policy: the pure renderer (golden files, schema, bad input) and
`GET /api/v1/policies/kyverno.yaml` (what it admits, who may read it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from deployments.manifests.kyverno import (
    KyvernoPolicyInput,
    PolicyInputError,
    kyverno_policy_object,
    render_kyverno_policy,
)
from portal.choices import Scope
from portal.models import Job, Team
from tests.deployments.factories import BinaryVersionFactory, EnvironmentFactory
from tests.images.factories import ImageVersionFactory

# Apart from golden/: test_manifests validates every file there as a Kubernetes manifest.
GOLDEN = Path(__file__).parent / "golden_policy"
SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "kyverno-clusterpolicy-v1.schema.json").read_text()
)
URL = "/api/v1/policies/kyverno.yaml"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _input(**changes: object) -> KyvernoPolicyInput:
    values: dict[str, object] = {
        "images": [
            f"harbor.example.com/runtime/debian@{D1}",
            f"harbor.example.com/runtime/debian@{D1}",  # duplicates collapse
            f"harbor.example.com/apps/ledger@{D3}",
        ],
        "artifacts": [f"harbor.example.com/binaries/payments-api@{D2}"],
        "hostpath_roots": {"payments-prod": ["/data/bin"], "payments-dev": []},
        "portal_url": "https://portal.example.com",
    }
    values.update(changes)
    return KyvernoPolicyInput(**values)  # type: ignore[arg-type]


def _validate(text: str) -> dict:
    document = yaml.safe_load(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return document


def test_golden_enforce() -> None:
    text = render_kyverno_policy(_input())
    _golden("kyverno-clusterpolicy.yaml", text)
    policy = _validate(text)
    rules = {r["name"]: r for r in policy["spec"]["rules"]}
    assert set(rules) == {"approved-images", "hostpath-payments-dev", "hostpath-payments-prod"}
    images = rules["approved-images"]
    assert images["match"]["any"][0]["resources"]["namespaces"] == [
        "payments-dev",
        "payments-prod",
    ]
    lists = [f["list"] for f in images["validate"]["foreach"]]
    assert "ephemeralContainers, initContainers, containers" in lists[0]
    assert lists[1] == "request.object.spec.volumes[?image][]"
    allowed = images["validate"]["foreach"][0]["deny"]["conditions"]["any"][0]["value"]
    assert allowed == [
        f"harbor.example.com/apps/ledger@{D3}",
        f"harbor.example.com/runtime/debian@{D1}",
    ]  # a binary artifact is mounted, never run as a container
    volumes = images["validate"]["foreach"][1]["deny"]["conditions"]["any"][0]["value"]
    assert volumes == sorted([*allowed, f"harbor.example.com/binaries/payments-api@{D2}"])
    prod = rules["hostpath-payments-prod"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert prod[0]["value"] == ["/data/bin", "/data/bin/*"]
    dev = rules["hostpath-payments-dev"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert dev[0]["value"] == []  # no hostPath environment there: every hostPath is denied
    assert {r["validate"]["failureAction"] for r in rules.values()} == {"Enforce"}


def test_golden_audit_and_no_environments() -> None:
    audit = render_kyverno_policy(_input(failure_action="Audit"))
    _golden("kyverno-clusterpolicy-audit.yaml", audit)
    empty = render_kyverno_policy(_input(hostpath_roots={}))
    _golden("kyverno-clusterpolicy-empty.yaml", empty)
    assert _validate(empty)["spec"]["rules"] == []


def test_wildcards_in_admitted_values_are_denied() -> None:
    """Kyverno's AnyNotIn reads the admitted value as a pattern too: `image: "*"` would match."""
    policy = kyverno_policy_object(_input())
    for rule in policy["spec"]["rules"]:
        for each in rule["validate"]["foreach"]:
            keys = [c["key"] for c in each["deny"]["conditions"]["any"]]
            assert any("contains(" in k and "'*'" in k and "'?'" in k for k in keys), rule["name"]


def test_schema_refuses_what_kyverno_would_prune() -> None:
    policy = kyverno_policy_object(_input())
    policy["spec"]["rules"][0]["validate"]["failureActon"] = "Enforce"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(policy)
    policy = kyverno_policy_object(_input())
    policy["spec"]["rules"][0]["name"] = "x" * 64
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(policy)


def test_long_namespace_rule_names_fit() -> None:
    namespace = "n" * 63
    policy = _validate(render_kyverno_policy(_input(hostpath_roots={namespace: ["/data/bin"]})))
    names = [r["name"] for r in policy["spec"]["rules"]]
    assert all(len(n) <= 63 for n in names)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"images": ["runtime/debian:12"]}, "not a digest-pinned"),
        ({"images": ["harbor.example.com/runtime/debian@sha256:abc"]}, "not a digest-pinned"),
        ({"artifacts": ["harbor.example.com/binaries/x:1.0"]}, "not a digest-pinned"),
        ({"hostpath_roots": {"Payments": ["/data/bin"]}}, "DNS-1123"),
        ({"hostpath_roots": {"p": ["data/bin"]}}, "normalised"),
        ({"hostpath_roots": {"p": ["/data/../etc"]}}, "normalised"),
        ({"hostpath_roots": {"p": ["/data/*"]}}, "normalised"),
        ({"hostpath_roots": {"p": ["/"]}}, "normalised"),
        ({"failure_action": "enforce"}, "failure_action"),
    ],
)
def test_renderer_refuses_bad_values(changes: dict, message: str) -> None:
    with pytest.raises(PolicyInputError, match=message):
        render_kyverno_policy(_input(**changes))


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture
def catalog(db: None) -> dict[str, str]:
    """Versions in every state, binaries with and without artifacts, three environments."""
    approved = ImageVersionFactory(state="approved")
    superseded = ImageVersionFactory(state="superseded", base_image=approved.base_image)
    revoked = ImageVersionFactory(state="revoked", base_image=approved.base_image)
    candidate = ImageVersionFactory(state="candidate", base_image=approved.base_image)
    pushed = BinaryVersionFactory(artifact_ref=f"127.0.0.1:5000/binaries/pay@{D2}")
    BinaryVersionFactory(service=pushed.service, artifact_ref="")
    purged = BinaryVersionFactory(
        service=pushed.service, state="purged", artifact_ref=f"127.0.0.1:5000/binaries/pay@{D3}"
    )
    EnvironmentFactory(name="prod", namespace="payments-prod", hostpath_root="/data/bin")
    EnvironmentFactory(name="prod2", namespace="payments-prod", hostpath_root="/srv/portal-bin")
    EnvironmentFactory(name="dev", namespace="payments-dev", delivery_strategy="initFetch")
    Job.objects.create(
        kind="deployments.app_image_build",
        state="succeeded",
        result={"app_image": f"127.0.0.1:5000/apps/ledger@{D1}"},
    )
    return {
        "approved": approved.pull_ref,
        "superseded": superseded.pull_ref,
        "revoked": revoked.pull_ref,
        "candidate": candidate.pull_ref,
        "artifact": pushed.artifact_ref,
        "purged": purged.artifact_ref,
        "app": f"127.0.0.1:5000/apps/ledger@{D1}",
    }


def test_api_admits_the_catalog(
    catalog: dict[str, str], token_client, django_assert_max_num_queries
) -> None:
    platform, _ = Team.objects.get_or_create(name="platform", defaults={"is_platform": True})
    client = token_client(platform, [Scope.DEPLOYMENTS_READ])
    with django_assert_max_num_queries(10):
        response = client.get(URL)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/yaml")
    assert response["ETag"].strip('"')
    policy = _validate(response.content.decode())
    rules = {r["name"]: r for r in policy["spec"]["rules"]}
    containers, volumes = rules["approved-images"]["validate"]["foreach"]
    allowed = set(containers["deny"]["conditions"]["any"][0]["value"])
    mounted = set(volumes["deny"]["conditions"]["any"][0]["value"])
    assert {catalog[k] for k in ("approved", "superseded", "app")} <= allowed
    assert catalog["artifact"] not in allowed and catalog["artifact"] in mounted
    assert not {catalog["revoked"], catalog["candidate"], catalog["purged"]} & (allowed | mounted)
    prod = rules["hostpath-payments-prod"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert prod[0]["value"] == ["/data/bin", "/data/bin/*", "/srv/portal-bin", "/srv/portal-bin/*"]
    dev = rules["hostpath-payments-dev"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert dev[0]["value"] == []

    audit = client.get(URL, {"action": "Audit"})
    assert audit.status_code == 200
    assert "failureAction: Audit" in audit.content.decode()


def test_api_refuses(catalog: dict[str, str], token_client, api) -> None:
    platform, _ = Team.objects.get_or_create(name="platform", defaults={"is_platform": True})
    assert api.get(URL).status_code == 401
    assert api.get(URL).json()["code"] == "not_authenticated"
    no_scope = token_client(platform, [Scope.IMAGES_READ]).get(URL)
    assert no_scope.status_code == 403 and "deployments:read" in no_scope.json()["detail"]
    service_team = Team.objects.get(name="payments")
    other = token_client(service_team, [Scope.DEPLOYMENTS_READ]).get(URL)
    assert other.status_code == 403 and "platform team" in other.json()["detail"]
    bad = token_client(platform, [Scope.DEPLOYMENTS_READ]).get(URL, {"action": "Block"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_api_a_catalog_value_no_policy_can_name_is_a_409(
    catalog: dict[str, str], token_client
) -> None:
    from deployments.models import BinaryVersion

    BinaryVersion.objects.filter(artifact_ref=catalog["artifact"]).update(
        artifact_ref="127.0.0.1:5000/binaries/pay:latest"
    )
    platform, _ = Team.objects.get_or_create(name="platform", defaults={"is_platform": True})
    response = token_client(platform, [Scope.DEPLOYMENTS_READ]).get(URL)
    assert response.status_code == 409 and response.json()["code"] == "policy_input"
    assert "not a digest-pinned" in response.json()["detail"]
