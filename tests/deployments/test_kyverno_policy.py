"""The Kyverno admission policy: the pure renderer (golden files, schema, bad input, object
size at the bench's largest catalog) and `GET /api/v1/policies/kyverno.yaml` (what it admits,
who may read it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deployments.manifests.kyverno import (
    OBJECT_BYTES_MAX,
    KyvernoPolicyInput,
    PolicyInputError,
    kyverno_policy_object,
    kyverno_policy_objects,
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


def _documents(text: str) -> list[dict]:
    """Every document of the export, each checked: the ConfigMaps against Kubernetes' own
    schema (strict), the ClusterPolicy (last) against Kyverno's v1 shape, every shard a JSON
    array of strings, and every context entry naming a shard of the export."""
    documents = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    *configmaps, policy = documents
    jsonschema.Draft202012Validator(SCHEMA).validate(policy)
    shards = set()
    for configmap in configmaps:
        assert configmap["kind"] == "ConfigMap"
        kubernetes_validate.validate(configmap, "1.33", strict=True)
        refs = json.loads(configmap["data"]["refs"])
        assert isinstance(refs, list) and all(isinstance(r, str) for r in refs)
        shards.add((configmap["metadata"]["namespace"], configmap["metadata"]["name"]))
    for rule in policy["spec"]["rules"]:
        for entry in rule.get("context", []):
            assert (entry["configMap"]["namespace"], entry["configMap"]["name"]) in shards
    return documents


def _validate(text: str) -> dict:
    """The ClusterPolicy of a checked export."""
    return _documents(text)[-1]


def _admitted(text: str, kind: str) -> list[str]:
    """The references of every `kind` shard (images or artifacts), in shard order."""
    prefix = f"base-image-portal-{kind}-"
    return [
        ref
        for document in _documents(text)[:-1]
        if document["metadata"]["name"].startswith(prefix)
        for ref in json.loads(document["data"]["refs"])
    ]


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
    assert [c["name"] for c in images["context"]] == ["images_0", "artifacts_0"]
    lists = [f["list"] for f in images["validate"]["foreach"]]
    assert "ephemeralContainers, initContainers, containers" in lists[0] and lists[0] == lists[1]
    assert lists[2] == lists[3] == "request.object.spec.volumes[?image][]"
    containers, _, volumes, _ = images["validate"]["foreach"]
    # Containers: in no image shard; volumes: in no image shard and no artifact shard.
    assert [c["value"] for c in containers["deny"]["conditions"]["all"]] == [
        "{{ images_0.data.refs | parse_json(@) }}"
    ]
    assert [c["value"] for c in volumes["deny"]["conditions"]["all"]] == [
        "{{ images_0.data.refs | parse_json(@) }}",
        "{{ artifacts_0.data.refs | parse_json(@) }}",
    ]
    assert _admitted(text, "images") == [
        f"harbor.example.com/apps/ledger@{D3}",
        f"harbor.example.com/runtime/debian@{D1}",
    ]  # a binary artifact is mounted, never run as a container
    assert _admitted(text, "artifacts") == [f"harbor.example.com/binaries/payments-api@{D2}"]
    prod = rules["hostpath-payments-prod"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert prod[0]["value"] == ["/data/bin", "/data/bin/*"]
    dev = rules["hostpath-payments-dev"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert dev[0]["value"] == []  # no hostPath environment there: every hostPath is denied
    assert {r["validate"]["failureAction"] for r in rules.values()} == {"Enforce"}


def test_golden_audit_and_no_environments() -> None:
    audit = render_kyverno_policy(_input(failure_action="Audit"))
    _golden("kyverno-clusterpolicy-audit.yaml", audit)
    empty = render_kyverno_policy(_input(hostpath_roots={}, images=[], artifacts=[]))
    _golden("kyverno-clusterpolicy-empty.yaml", empty)
    assert _validate(empty)["spec"]["rules"] == []
    # Still one (empty) shard per list, so a policy never names a ConfigMap that is missing.
    assert len(_documents(empty)) == 3 and _admitted(empty, "images") == []


def _bench_sized_input(n_binaries: int) -> KyvernoPolicyInput:
    """The catalog bench/kyverno_policy.py builds for `n_binaries` (its admitted part): a
    twentieth as image versions (half admitted), six in seven binaries with an artifact, a
    tenth as app images, one environment per hundred binaries (half hostPath)."""

    def ref(repo: str, seed: str) -> str:
        return f"harbor.example.com/{repo}@sha256:{hashlib.sha256(seed.encode()).hexdigest()}"

    n_services = n_binaries // 10
    images = [ref(f"runtime/os{i % 20}", f"v{i}") for i in range(n_binaries // 20) if i % 4 < 2]
    images += [ref(f"apps/svc{i}", f"p{i}") for i in range(n_services)]
    artifacts = [ref(f"binaries/svc{i % n_services}", f"a{i}") for i in range(n_binaries) if i % 7]
    roots = {f"ns{i}": [f"/data/bin{i}"] if i % 2 else [] for i in range(n_services // 10)}
    return KyvernoPolicyInput(images=images, artifacts=artifacts, hostpath_roots=roots)


@pytest.mark.parametrize("n_binaries", [20_000, 100_000])
def test_every_object_fits_kubernetes_at_the_bench_size_and_beyond(n_binaries: int) -> None:
    """At the bench's largest catalog (20,000 binaries, where a single policy was ~2.3 MiB)
    and at five times that, every object is under OBJECT_BYTES_MAX (1 MiB, below etcd's
    1.5 MiB) as the API server receives it (JSON), and every shard's data under a ConfigMap's
    1 MiB; at the bench's size the export is checked whole and nothing admitted is lost."""
    inp = _bench_sized_input(n_binaries)
    objects = kyverno_policy_objects(inp)
    for obj in objects:
        size = len(json.dumps(obj, separators=(",", ":")).encode())
        assert size <= OBJECT_BYTES_MAX, (obj["metadata"]["name"], size)
        assert sum(len(v.encode()) for v in obj.get("data", {}).values()) <= 1024 * 1024
    assert len(objects[-1]["spec"]["rules"][0]["context"]) == len(objects) - 1 >= 3
    # A shard's name carries the count: a change of count never rewrites what the applied
    # policy reads (the old shards stay whole until the new policy replaces it).
    for kind in ("images", "artifacts"):
        names = [
            o["metadata"]["name"] for o in objects[:-1] if f"-{kind}-" in o["metadata"]["name"]
        ]
        assert names == [f"base-image-portal-{kind}-{i}-of-{len(names)}" for i in range(len(names))]
    if n_binaries == 20_000:
        text = render_kyverno_policy(inp)
        assert sorted(_admitted(text, "images")) == sorted(set(inp.images))
        assert sorted(_admitted(text, "artifacts")) == sorted(set(inp.artifacts))


def test_a_policy_past_the_object_size_is_refused_with_a_reason() -> None:
    """The policy grows about 800 bytes per environment namespace (its hostPath rule): past
    OBJECT_BYTES_MAX the renderer says why instead of emitting what the API server refuses."""
    many = {f"apps-{i}-{'x' * 40}": [f"/data/bin{i}"] for i in range(1500)}
    with pytest.raises(PolicyInputError, match="1500 environment namespaces"):
        kyverno_policy_objects(_input(hostpath_roots=many))


def test_wildcards_in_admitted_values_are_denied() -> None:
    """Kyverno's AnyNotIn reads the admitted value as a pattern too: `image: "*"` would match."""
    policy = kyverno_policy_object(_input())
    for rule in policy["spec"]["rules"]:
        guarded = set()
        for each in rule["validate"]["foreach"]:
            # A guard denies on its own: in an `any` (a deny's `all` must hold as well).
            keys = [c["key"] for c in each["deny"]["conditions"].get("any", [])]
            if any("contains(" in k and "'*'" in k and "'?'" in k for k in keys):
                guarded.add(each["list"])
        assert guarded == {each["list"] for each in rule["validate"]["foreach"]}, rule["name"]


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
    text = response.content.decode()
    policy = _validate(text)
    rules = {r["name"]: r for r in policy["spec"]["rules"]}
    allowed = set(_admitted(text, "images"))
    mounted = allowed | set(_admitted(text, "artifacts"))
    assert {catalog[k] for k in ("approved", "superseded", "app")} <= allowed
    assert catalog["artifact"] not in allowed and catalog["artifact"] in mounted
    assert not {catalog["revoked"], catalog["candidate"], catalog["purged"]} & (allowed | mounted)
    prod = rules["hostpath-payments-prod"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert prod[0]["value"] == ["/data/bin", "/data/bin/*", "/srv/portal-bin", "/srv/portal-bin/*"]
    dev = rules["hostpath-payments-dev"]["validate"]["foreach"][0]["deny"]["conditions"]["any"]
    assert dev[0]["value"] == []

    audit = client.get(URL, {"action": "Audit", "namespace": "policy-system"})
    assert audit.status_code == 200
    assert "failureAction: Audit" in audit.content.decode()
    assert {d["metadata"].get("namespace") for d in _documents(audit.content.decode())} == {
        "policy-system",
        None,  # the ClusterPolicy
    }


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
    bad = token_client(platform, [Scope.DEPLOYMENTS_READ]).get(URL, {"namespace": "Kyverno"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("namespace")


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


def test_openapi_documents_the_export(api) -> None:
    """The API contract: both query parameters, and a YAML answer naming its objects."""
    operation = api.get("/api/schema/?format=json").json()["paths"][URL]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert sorted(parameters["action"]["enum"]) == ["Audit", "Enforce"]
    assert parameters["namespace"]["pattern"].startswith("^[a-z0-9]")
    answer = operation["responses"]["200"]
    assert set(answer["content"]) == {"text/yaml"}
    for name in ("ConfigMaps", "ClusterPolicy", "configMap", str(OBJECT_BYTES_MAX)):
        assert name in answer["description"]
