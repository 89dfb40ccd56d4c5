"""The Kubernetes manifests under deploy/kubernetes/: valid for every supported version, complete.

`kubernetes-validate --strict` (the pinned CLI, the same schemas the release manifests are
checked against) runs over every file for each Kubernetes version the portal supports; the
structure tests pin what an operator relies on: one worker Deployment per Celery queue, one
beat, a migrations Job, probes on /healthz, resources on every container, disruption budgets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from deployments.manifests.validation import supported_versions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in manifest_files():
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", supported_versions())
def test_manifests_pass_strict_validation(version: str) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [str(VALIDATE), "--strict", "--no-warn", "-k", version, *map(str, manifest_files())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(documents()), result.stdout


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]


def test_one_worker_deployment_per_queue() -> None:
    queues = {}
    for doc in by_kind("Deployment"):
        args = pod_spec(doc)["containers"][0]["args"]
        if args[:3] == ["celery", "--app=portal", "worker"]:
            (flag,) = [a for a in args if a.startswith("--queues=")]
            queues[flag.removeprefix("--queues=")] = doc
    assert sorted(queues) == sorted(settings.CELERY_TASK_QUEUES_NAMES)
    for queue, doc in queues.items():
        image = pod_spec(doc)["containers"][0]["image"]
        assert "base-image-portal-worker:" in image, f"{queue} runs the worker image"
    # Only build hosts run buildah/mmdebstrap, as root; every other pod runs as the portal user.
    assert pod_spec(queues["builds"])["nodeSelector"]
    for doc in documents():
        if (
            doc["kind"] in {"Deployment", "Job"}
            and doc["metadata"]["name"] != "portal-worker-builds"
        ):
            assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True, doc["metadata"]


def test_exactly_one_beat_and_a_migrations_job() -> None:
    beats = [
        d for d in by_kind("Deployment") if pod_spec(d)["containers"][0]["args"][2:3] == ["beat"]
    ]
    assert len(beats) == 1
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"
    (job,) = by_kind("Job")
    assert pod_spec(job)["containers"][0]["args"] == ["python", "manage.py", "migrate", "--noinput"]


def test_web_probes_healthz_and_is_served_and_budgeted() -> None:
    (web,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "portal-web"]
    container = pod_spec(web)["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        (host,) = container[probe]["httpGet"]["httpHeaders"]
        (config,) = by_kind("ConfigMap")
        assert host["value"] in config["data"]["ALLOWED_HOSTS"].split(",")
    labels = web["spec"]["template"]["metadata"]["labels"]
    services = [s for s in by_kind("Service") if s["spec"]["selector"].items() <= labels.items()]
    assert services, "a Service selects the web pods"
    budgets = by_kind("PodDisruptionBudget")
    selected = [
        b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert selected and selected[0]["spec"]["minAvailable"] < web["spec"]["replicas"]


def test_every_container_has_requests_and_limits() -> None:
    for doc in documents():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        for container in pod_spec(doc)["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), doc["metadata"]["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), doc["metadata"]["name"]


def test_healthz_answers_probes_over_plain_http(client: Any, settings: Any, db: None) -> None:
    """With DEBUG off every other URL redirects to HTTPS; the kubelet's probe must not."""
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.get("/api/schema/", HTTP_HOST="localhost").status_code == 301
