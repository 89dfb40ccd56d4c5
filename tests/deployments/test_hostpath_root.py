"""The hostPath root and the node sync (M5): system directories are refused when an
environment is created, and the sync DaemonSet replaces only directories it created itself."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from deployments.manifests import ManifestError, render_hostpath_daemonset
from deployments.models import Environment
from deployments.selectors import environment_hostpath_sync_yaml
from deployments.services import environment_fetch_token_create, release_create
from deployments.storage import binary_store
from portal.actors import Actor
from portal.models import AuditEntry
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)

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


def _env_of(container: dict, **extra: str) -> dict[str, str]:
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return env | {"PATH": os.environ["PATH"], **extra}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_m5_sync_replaces_only_the_directories_it_created(
    shell, live_server, settings, binary_store_dir, admin_user, make_user, service_team, tmp_path
):
    """The rendered DaemonSet script, one pass against a scratch node tree, downloading from
    the portal's live server with the environment's fetch token.

    Service `lib` version `kubelet` is what wiped /var/lib/kubelet with hostpath_root=/var:
    the scratch tree holds a foreign `lib/kubelet` (the kubelet's state), which must survive.
    """
    if not shutil.which(shell):
        pytest.skip(f"needs {shell}")
    from portal.choices import Role

    settings.PORTAL_URL = live_server.url
    environment = EnvironmentFactory(name="nodes", namespace="nodes", delivery_strategy="hostPath")
    developer = Actor(user=make_user("pay-dev", service_team, Role.DEVELOPER))
    payloads = {}
    for service_name, version in (("lib", "kubelet"), ("orders", "1.0.0")):
        payload = f"\x7fELF {service_name} {version}\n".encode() * 100
        sha = hashlib.sha256(payload).hexdigest()
        name, _ = binary_store(sha256=sha, content=ContentFile(payload))
        service = ServiceFactory(name=service_name, team=service_team)
        binary = BinaryVersionFactory(
            service=service, version=version, filename=service_name, sha256=sha, file=name,
            size=len(payload),
        )  # fmt: skip
        deployment = DeploymentFactory(
            service=service, environment=environment, binary_version=binary
        )
        release_create(actor=developer, deployment=deployment)
        payloads[service_name] = payload
    fetch = environment_fetch_token_create(environment=environment, actor=Actor(user=admin_user))
    text = environment_hostpath_sync_yaml(environment, actor=Actor(user=admin_user))
    config_map, daemon_set = yaml.safe_load_all(text)
    script = tmp_path / "sync.sh"
    script.write_text(config_map["data"]["sync.sh"])
    (tmp_path / "entries.tsv").write_text(config_map["data"]["entries.tsv"])
    container = daemon_set["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "sh"

    root = tmp_path / "node"
    kubelet = root / "lib" / "kubelet"
    (kubelet / "pods").mkdir(parents=True)
    (kubelet / "config.yaml").write_text("the kubelet's own state\n")
    stale = root / "orders" / "1.0.0"  # a portal directory of an earlier pass, now damaged
    stale.mkdir(parents=True)
    (stale / ".portal-sync").write_text("created by binary-sync\n")
    (stale / "orders").write_bytes(b"tampered")
    (stale / "leftover").write_bytes(b"old")

    env = _env_of(
        container,
        HOSTPATH_ROOT=str(root),
        ENTRIES_FILE=str(tmp_path / "entries.tsv"),
        SYNC_ONCE="1",
        PORTAL_TOKEN=fetch.secret,
    )
    argv = [shell, str(script)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 1, result.stderr  # the skipped entry is reported as failed
    assert (kubelet / "config.yaml").read_text() == "the kubelet's own state\n"
    assert (kubelet / "pods").is_dir()
    assert sorted(p.name for p in kubelet.iterdir()) == ["config.yaml", "pods"]
    assert f"skipping lib kubelet: {kubelet} exists but binary-sync did not create it" in (
        result.stderr
    )
    # the portal's own directory was replaced: the verified binary, the marker, nothing else
    assert (stale / "orders").read_bytes() == payloads["orders"]
    assert sorted(p.name for p in stale.iterdir()) == [".portal-sync", "orders"]
    assert "installed orders 1.0.0" in result.stdout
    assert not any((root / ".staging").iterdir())

    # once the foreign directory is gone, the entry lands in a directory the script marks
    shutil.rmtree(kubelet)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert (kubelet / "lib").read_bytes() == payloads["lib"]
    assert (kubelet / ".portal-sync").is_file()
    assert "installed lib kubelet" in again.stdout and "orders" not in again.stdout
