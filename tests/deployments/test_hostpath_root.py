"""The hostPath root and the node sync (M5): system directories are refused when an
environment is created, and the sync DaemonSet replaces only directories it created itself."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from deployments.manifests import ManifestError, render_hostpath_daemonset
from deployments.models import Environment
from portal.models import AuditEntry

RUNTIME = "registry.example.com/runtime/debian@sha256:" + "a" * 64

REFUSED = [
    ("/", "absolute, normalised path"),
    ("/var", "must not be the shared directory '/var' itself"),
    ("/data/../etc", "absolute, normalised path"),
    ("/etc", "'/etc' is a system directory"),
    ("/etc/kubernetes/bin", "is under the system directory /etc"),
    ("/var/lib", "'/var/lib' is a system directory"),
    ("/var/lib/kubelet", "is under the system directory /var/lib"),
    ("/usr/local/bin", "is under the system directory /usr"),
    ("/lib64", "'/lib64' is a system directory"),
    ("/proc/self", "is under the system directory /proc"),
    ("/opt", "must not be the shared directory '/opt' itself"),
    ("/data/bin/", "absolute, normalised path"),
]
ALLOWED = ["/data/bin", "/opt/portal-bin", "/srv/portal/bin", "/var/opt/portal-bin"]


def _body(name: str, root: str) -> dict[str, str]:
    return {
        "name": name,
        "namespace": name,
        "k8s_version": "1.33",
        "delivery_strategy": "hostPath",
        "hostpath_root": root,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("root", "rule"), REFUSED)
def test_m5_system_hostpath_roots_are_refused_at_creation(token_client, platform_team, root, rule):
    admin = token_client(platform_team, ["deployments:write"])
    response = admin.post("/api/v1/environments/", _body("nodes", root), format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith("hostpath_root: ")
    assert rule in body["detail"]
    assert "hostpath_root" in body["errors"]
    assert not Environment.objects.exists()
    assert not AuditEntry.objects.filter(action="environment.create").exists()


@pytest.mark.django_db
def test_m5_dedicated_hostpath_roots_are_accepted(token_client, platform_team):
    admin = token_client(platform_team, ["deployments:write"])
    for index, root in enumerate(ALLOWED):
        response = admin.post("/api/v1/environments/", _body(f"e{index}", root), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["hostpath_root"] == root


@pytest.mark.django_db
def test_m5_the_model_and_the_ui_form_refuse_the_same_roots(client, admin_user):
    environment = Environment(
        name="nodes", namespace="nodes", k8s_version="1.33", hostpath_root="/var"
    )
    with pytest.raises(ValidationError) as caught:
        environment.full_clean()
    assert "shared directory '/var'" in " ".join(caught.value.message_dict["hostpath_root"])
    client.force_login(admin_user)
    form = {**_body("nodes", "/etc"), "fetch_token_secret": "portal-fetch-token"}
    page = client.post("/environments/new/", form)
    assert page.status_code == 400
    assert "is a system directory" in page.content.decode()
    assert not Environment.objects.exists()


@pytest.mark.parametrize(("root", "rule"), REFUSED)
def test_m5_the_renderer_refuses_the_same_roots(root, rule):
    with pytest.raises(ManifestError, match="hostpath_root") as caught:
        render_hostpath_daemonset("prod", "ns", "", (), RUNTIME, hostpath_root=root)
    assert rule in str(caught.value)
