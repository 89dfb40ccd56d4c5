"""The environment's fetch token: created for platform admins, used by the real fetch scripts."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.files.base import ContentFile

from deployments.models import Environment
from deployments.selectors import environment_hostpath_sync_yaml
from deployments.services import environment_fetch_token_create, release_create
from deployments.storage import binary_store
from portal.actors import Actor
from portal.auth import token_create, token_revoke
from portal.models import ApiToken, AuditEntry
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)


@pytest.mark.django_db
def test_fetch_token_api_is_for_platform_admins(token_client, platform_team, service_team):
    EnvironmentFactory(name="prod", namespace="payments-prod", fetch_token_secret="prod-fetch")
    url = "/api/v1/environments/prod/fetch-token/"
    refused = token_client(service_team, ["deployments:write"]).post(url)
    assert refused.status_code == 403
    assert "Only platform admins" in refused.json()["detail"]
    no_scope = token_client(platform_team, ["deployments:read"]).post(url)
    assert no_scope.status_code == 403
    assert not ApiToken.objects.filter(name__startswith="fetch-").exists()

    response = token_client(platform_team, ["deployments:write"]).post(url)
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    token = ApiToken.objects.get(pk=body["token"]["id"])
    assert (token.team, token.scopes) == (platform_team, ["binaries:read"])
    assert body["token"]["name"].startswith("fetch-prod-")
    assert body["secret"].startswith("bip_")
    assert body["kubectl_command"] == (
        f"kubectl create secret generic prod-fetch --from-literal=token={body['secret']} "
        "-n payments-prod"
    )
    # the secret is never stored or audited; the action is
    entry = AuditEntry.objects.get(action="environment.fetch_token_create")
    assert body["secret"] not in str(entry.after) and entry.after["secret_name"] == "prod-fetch"
    assert body["secret"] not in str(list(ApiToken.objects.values()))
    assert (body["revoked_tokens"], body["revoked_notice"]) == ([], "")  # nothing to rotate yet
    # a second call rotates: a new token, and the first one is revoked and named
    again = token_client(platform_team, ["deployments:write"]).post(url)
    assert again.status_code == 201 and again.json()["token"]["id"] != token.pk
    assert again.json()["revoked_tokens"] == [
        {"id": token.pk, "team": "platform", "name": token.name, "prefix": token.prefix}
    ]
    assert again.json()["revoked_notice"] == (
        f"The previous token platform/{token.name} (prefix bip_{token.prefix}_…) was revoked; "
        "update the Secret prod-fetch in namespace payments-prod now: nodes still using the "
        "old token get 401."
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    missing = token_client(platform_team, ["deployments:write"]).post(
        "/api/v1/environments/nope/fetch-token/"
    )
    assert missing.status_code == 404


@pytest.mark.django_db
def test_fetch_token_can_download_and_nothing_else(api, admin_user, service_team, binary_store_dir):
    env = EnvironmentFactory(name="prod")
    payload = b"downloadable"
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    binary = BinaryVersionFactory(
        service=ServiceFactory(team=service_team), sha256=sha, file=name, size=len(payload)
    )
    fetch = environment_fetch_token_create(environment=env, actor=Actor(user=admin_user))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {fetch.secret}")
    download = api.get(f"/api/v1/binaries/{binary.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == payload
    assert api.post(f"/api/v1/binaries/{binary.pk}/yank/").status_code == 403
    assert api.get("/api/v1/deployments/").status_code == 403
    api.credentials()
    assert api.get(f"/api/v1/binaries/{binary.pk}/download/").status_code == 401


@pytest.fixture
def downloadable(service_team, binary_store_dir):
    payload = b"downloadable"
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    return BinaryVersionFactory(
        service=ServiceFactory(team=service_team), sha256=sha, file=name, size=len(payload)
    )


def _download_status(api, secret: str, binary) -> int:
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    try:
        return api.get(f"/api/v1/binaries/{binary.pk}/download/").status_code
    finally:
        api.credentials()


@pytest.mark.django_db
def test_rotation_revokes_the_previous_token(api, admin_user, downloadable):
    env = EnvironmentFactory(name="prod")
    admin = Actor(user=admin_user)
    first = environment_fetch_token_create(environment=env, actor=admin)
    assert first.revoked == () and first.revoked_notice == ""
    assert _download_status(api, first.secret, downloadable) == 200

    second = environment_fetch_token_create(environment=env, actor=admin)

    assert [t.pk for t in second.revoked] == [first.token.pk]
    assert f"prefix bip_{first.token.prefix}_…) was revoked" in second.revoked_notice
    assert _download_status(api, first.secret, downloadable) == 401
    assert _download_status(api, second.secret, downloadable) == 200
    revocation = AuditEntry.objects.get(action="token.revoke")
    assert (revocation.object_id, revocation.actor_user) == (str(first.token.pk), admin_user)
    assert (revocation.before, revocation.after) == ({"revoked": False}, {"revoked": True})
    rotation = AuditEntry.objects.filter(action="environment.fetch_token_create").first()
    assert rotation.after["revoked"] == [f"platform/{first.token.name}"]
    assert rotation.after["token"] == f"platform/{second.token.name}"

    # a token already revoked by hand is not revoked again (the audit log stays truthful)
    token_revoke(token=second.token, actor=admin)
    third = environment_fetch_token_create(environment=env, actor=admin)
    assert third.revoked == () and third.revoked_notice == ""
    assert AuditEntry.objects.filter(action="token.revoke").count() == 2
    assert _download_status(api, third.secret, downloadable) == 200


@pytest.mark.django_db
def test_rotation_revokes_only_this_environments_fetch_tokens(
    api, admin_user, service_team, platform_team, downloadable
):
    prod, prod_eu = EnvironmentFactory(name="prod"), EnvironmentFactory(name="prod-eu")
    admin = Actor(user=admin_user)
    eu = environment_fetch_token_create(environment=prod_eu, actor=admin)  # fetch-prod-eu-…
    system = Actor.system_actor("test")
    look_alikes = [  # named like prod's fetch tokens, but not issued by the rotation
        token_create(team=service_team, name=eu.token.name.replace("-eu", ""),
                     scopes=["binaries:read"], actor=system)[0],
        token_create(team=platform_team, name=eu.token.name.replace("-eu", "") + "-ci",
                     scopes=["binaries:read"], actor=system)[0],
        token_create(team=platform_team, name="fetch-prod-ci", scopes=["binaries:read"],
                     actor=system)[0],
    ]  # fmt: skip

    first = environment_fetch_token_create(environment=prod, actor=admin)
    second = environment_fetch_token_create(environment=prod, actor=admin)

    assert first.revoked == ()
    assert [t.pk for t in second.revoked] == [first.token.pk]
    live = ApiToken.objects.filter(revoked_at__isnull=True)
    assert set(live.values_list("pk", flat=True)) == {
        eu.token.pk,
        second.token.pk,
        *(t.pk for t in look_alikes),
    }
    assert _download_status(api, eu.secret, downloadable) == 200


@pytest.mark.django_db
def test_refused_rotation_revokes_nothing(token_client, admin_user, service_team):
    env = EnvironmentFactory(name="prod")
    fetch = environment_fetch_token_create(environment=env, actor=Actor(user=admin_user))
    url = "/api/v1/environments/prod/fetch-token/"
    assert token_client(service_team, ["deployments:write"]).post(url).status_code == 403
    fetch.token.refresh_from_db()
    assert fetch.token.revoked_at is None
    assert not AuditEntry.objects.filter(action="token.revoke").exists()


@pytest.mark.django_db
def test_environment_page_says_the_previous_token_was_revoked(client, admin_user):
    EnvironmentFactory(name="prod", namespace="payments-prod", fetch_token_secret="prod-fetch")
    client.force_login(admin_user)
    page = client.get("/environments/prod/").content.decode()
    assert "A new token revokes this environment's previous fetch token" in page
    first = client.post("/environments/prod/").content.decode()
    assert 'id="fetch-token-revoked"' not in first
    old = ApiToken.objects.get()

    second = client.post("/environments/prod/")

    text = second.content.decode()
    assert second.status_code == 200 and second["Cache-Control"] == "no-store"
    assert (
        f"The previous token platform/{old.name} (prefix bip_{old.prefix}_…) was revoked; "
        "update the Secret prod-fetch in namespace payments-prod now"
    ) in text
    assert "kubectl delete secret prod-fetch -n payments-prod" in text
    old.refresh_from_db()
    assert old.revoked_at is not None


@pytest.mark.django_db
def test_environment_secret_name_is_checked(token_client, platform_team):
    client = token_client(platform_team, ["deployments:write"])
    body = {"name": "dev", "namespace": "dev", "k8s_version": "1.33"}
    bad = client.post(
        "/api/v1/environments/", {**body, "fetch_token_secret": "Bad_Name"}, format="json"
    )
    assert bad.status_code == 400 and "Kubernetes Secret name" in bad.json()["detail"]
    reserved = client.post("/api/v1/environments/", {**body, "name": "new"}, format="json")
    assert reserved.status_code == 400 and "reserved" in reserved.json()["detail"]
    assert client.post("/api/v1/environments/", body, format="json").status_code == 201
    assert Environment.objects.get(name="dev").fetch_token_secret == "portal-fetch-token"


# --- the rendered scripts against the real portal (live server, real download endpoint) ----


def _env_of(container: dict, **extra: str) -> dict[str, str]:
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return env | {"PATH": os.environ["PATH"], **extra}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.django_db(transaction=True)
def test_rendered_scripts_download_from_the_portal_with_the_fetch_token(
    live_server, settings, binary_store_dir, admin_user, developer, service_team, tmp_path: Path
) -> None:
    settings.PORTAL_URL = live_server.url
    payload = b"\x7fELF the orders binary\n" * 500
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    service = ServiceFactory(name="orders", team=service_team)
    binary = BinaryVersionFactory(
        service=service, version="1.0.0", filename="orders", sha256=sha, file=name,
        size=len(payload),
    )  # fmt: skip
    fetch_env = EnvironmentFactory(name="dev", namespace="dev", delivery_strategy="initFetch")
    host_env = EnvironmentFactory(name="prod", namespace="prod", delivery_strategy="hostPath")
    dev = Actor(user=developer)
    for environment in (fetch_env, host_env):
        deployment = DeploymentFactory(
            service=service, environment=environment, binary_version=binary
        )
        release_create(actor=dev, deployment=deployment)
    fetch = environment_fetch_token_create(environment=fetch_env, actor=Actor(user=admin_user))

    # initFetch: the init container's command, its env, and the Secret's value as PORTAL_TOKEN
    manifest = yaml.safe_load(fetch_env.deployments.get().releases.get().manifest_yaml)
    init = manifest["spec"]["template"]["spec"]["initContainers"][0]
    dest = tmp_path / "fetched"
    dest.mkdir()
    ok = _run(init["command"], _env_of(init, DEST_DIR=str(dest), PORTAL_TOKEN=fetch.secret))
    assert ok.returncode == 0, ok.stderr
    assert (dest / "orders").read_bytes() == payload

    # hostPath: the DaemonSet's sync script, one pass
    config_map, daemon_set = yaml.safe_load_all(
        environment_hostpath_sync_yaml(host_env, actor=Actor(user=admin_user))
    )
    (tmp_path / "sync.sh").write_text(config_map["data"]["sync.sh"])
    (tmp_path / "entries.tsv").write_text(config_map["data"]["entries.tsv"])
    sync = daemon_set["spec"]["template"]["spec"]["containers"][0]
    root = tmp_path / "node"
    sync_env = _env_of(
        sync,
        HOSTPATH_ROOT=str(root),
        ENTRIES_FILE=str(tmp_path / "entries.tsv"),
        SYNC_ONCE="1",
        PORTAL_TOKEN=fetch.secret,
    )
    synced = _run(["sh", str(tmp_path / "sync.sh")], sync_env)
    assert synced.returncode == 0, synced.stderr
    assert (root / "orders" / "1.0.0" / "orders").read_bytes() == payload

    # a revoked token: the portal says 401, the script says why, nothing is written
    token_revoke(token=fetch.token, actor=Actor(user=admin_user))
    refused_dir = tmp_path / "refused"
    refused_dir.mkdir()
    refused = _run(
        init["command"], _env_of(init, DEST_DIR=str(refused_dir), PORTAL_TOKEN=fetch.secret)
    )
    assert refused.returncode == 1
    assert "the portal refused PORTAL_TOKEN (HTTP 401)" in refused.stderr
    assert list(refused_dir.iterdir()) == []
