"""UI pages: services list, service page, upload form, deployment page, diff, rollback."""

from __future__ import annotations

import hashlib
import html
import io
import re

import pytest
from django.http import Http404

from deployments.models import BinaryVersion, Release
from tests.deployments.conftest import stored_files
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev_client(client, developer):
    client.force_login(developer)
    return client


def test_service_list_empty_state_and_rows(dev_client, service_team):
    page = dev_client.get("/services/").content.decode()
    assert "No services yet" in page
    ServiceFactory(name="orders", team=service_team)
    page = dev_client.get("/services/").content.decode()
    assert 'href="/services/orders/"' in page
    assert "No service matches" in dev_client.get("/services/?q=zzz").content.decode()


def test_service_page_versions_table_and_filters_survive_pagination(
    dev_client, service_team, django_assert_max_num_queries
):
    service = ServiceFactory(name="orders", team=service_team)
    for n in range(30):
        BinaryVersionFactory(
            service=service, version=f"1.{n}.0", arch="aarch64" if n % 2 else "x86_64"
        )
    deployment = DeploymentFactory(
        service=service, binary_version=BinaryVersion.objects.get(version="1.3.0")
    )
    with django_assert_max_num_queries(12):
        response = dev_client.get("/services/orders/", {"arch": "aarch64", "page_size": 10})
    page = response.content.decode()
    assert page.count("<td>aarch64</td>") == 10
    # the older-page link is a keyset cursor and keeps the filter and the page size
    older = re.search(r'href="\?([^"]*cursor=[^"]+)" rel="next"', page)
    assert older and "arch=aarch64" in older[1] and "page_size=10" in older[1]
    assert f'/deployments/{deployment.pk}/">{deployment.environment.name}</a>' in page
    assert "2.34" in page and "12.1\xa0KB" in page
    with django_assert_max_num_queries(12):
        second = dev_client.get("/services/orders/?" + html.unescape(older[1]))
    assert second.content.decode().count("<td>aarch64</td>") == 5
    assert 'rel="prev"' in second.content.decode() and 'rel="next"' not in second.content.decode()
    assert dev_client.get("/services/Bad..Name/").status_code == 404


def test_upload_form_uses_the_same_service(dev_client, service_team, binary_store_dir, elf_files):
    ServiceFactory(name="orders", team=service_team)
    assert dev_client.get("/services/orders/upload/").status_code == 200
    path = elf_files["hello-static"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with path.open("rb") as fh:
        response = dev_client.post(
            "/services/orders/upload/",
            {"file": fh, "version": "3.1.0", "arch": "amd64", "sha256": digest},
        )
    assert response.status_code == 302
    row = BinaryVersion.objects.get()
    assert (row.version, row.linkage, row.sha256) == ("3.1.0", "static", digest)
    with path.open("rb") as fh:
        bad = dev_client.post(
            "/services/orders/upload/",
            {"file": fh, "version": "3.2.0", "arch": "x86_64", "sha256": "1" * 64},
        )
    assert bad.status_code == 400
    assert "Checksum mismatch" in bad.content.decode()
    assert BinaryVersion.objects.count() == 1
    assert len(stored_files(binary_store_dir["root"])) == 1
    assert list(binary_store_dir["temp"].iterdir()) == []


def test_upload_form_over_the_limit_answers_413_with_the_form(
    dev_client, service_team, binary_store_dir, elf_files, settings
):
    settings.PORTAL_BINARY_MAX_BYTES = 1024
    ServiceFactory(name="orders", team=service_team)
    path = elf_files["hello-static"]
    with path.open("rb") as fh:
        response = dev_client.post(
            "/services/orders/upload/",
            {"file": fh, "version": "1", "arch": "amd64", "sha256": "0" * 64},
        )
    assert response.status_code == 413
    assert "limit" in response.content.decode()
    assert 'name="version"' in response.content.decode()  # the form, not an error page
    assert BinaryVersion.objects.count() == 0
    assert list(binary_store_dir["temp"].iterdir()) == []


def test_upload_form_checks_csrf(client, developer, service_team, binary_store_dir, elf_files):
    from django.test import Client

    ServiceFactory(name="orders", team=service_team)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(developer)
    with elf_files["hello"].open("rb") as fh:
        response = strict.post(
            "/services/orders/upload/",
            {"file": fh, "version": "1", "arch": "x86_64", "sha256": "0" * 64},
        )
    assert response.status_code == 403
    assert BinaryVersion.objects.count() == 0
    assert list(binary_store_dir["temp"].iterdir()) == []


def test_deployment_page_release_diff_and_rollback(dev_client, service_team, settings):
    settings.PORTAL_URL = "https://portal.example.com"
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(service=service)
    newer = BinaryVersionFactory(service=service, version="2.0.0")
    url = f"/deployments/{deployment.pk}/"
    assert "No release yet" in dev_client.get(url).content.decode()
    assert dev_client.post(url, {}).status_code == 302
    assert dev_client.post(url, {"binary_version": newer.pk}).status_code == 302
    page = dev_client.get(url).content.decode()
    assert "#2" in page and "Roll back to #1" in page
    diff = dev_client.get(f"/deployments/{deployment.pk}/diff/", {"a": 1, "b": 2}).content.decode()
    assert "--- release-1.yaml" in diff and "+++ release-2.yaml" in diff
    assert "<ins>+" in diff and "2.0.0" in diff
    missing = dev_client.get(f"/deployments/{deployment.pk}/diff/", {"a": 1, "b": 9})
    assert "has no release #9" in missing.content.decode()
    first = Release.objects.get(number=1)
    response = dev_client.post(f"/releases/{first.pk}/rollback/")
    assert response.status_code == 302
    third = Release.objects.get(number=3)
    assert third.rollback_of_id == first.pk and third.binary_sha256 == first.binary_sha256
    detail = dev_client.get(f"/releases/{third.pk}/").content.decode()
    assert "rollback to #1" in detail and "kind: Deployment" in detail


def test_release_refusal_is_shown(dev_client, service_team):
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(
            name="old", namespace="old", delivery_strategy="imageVolume", k8s_version="1.30"
        ),
    )
    response = dev_client.post(f"/deployments/{deployment.pk}/", {})
    assert response.status_code == 400
    assert "image volumes need Kubernetes 1.35" in response.content.decode()
    assert Release.objects.count() == 0


def test_environment_list(dev_client):
    assert "No environments yet" in dev_client.get("/environments/").content.decode()
    EnvironmentFactory(name="prod")
    page = dev_client.get("/environments/").content.decode()
    assert "/api/v1/environments/prod/hostpath-sync.yaml" in page


# --- create forms (the same services as the API) -------------------------------------------


def test_service_create_form(client, make_user, service_team, developer):
    maintainer = make_user("mia-maint", service_team, "maintainer")
    client.force_login(developer)
    assert client.get("/services/new/").status_code == 403
    assert "registers a service" in client.get("/services/").content.decode()
    client.force_login(maintainer)
    page = client.get("/services/").content.decode()
    assert 'href="/services/new/"' in page
    form = {"name": "orders", "team": service_team.pk, "language": "go", "default_mode": "volume"}
    response = client.post("/services/new/", form)
    assert response.status_code == 302 and response["Location"] == "/services/orders/"
    duplicate = client.post("/services/new/", form)
    assert duplicate.status_code == 409
    assert "A service named &#x27;orders&#x27; already exists." in duplicate.content.decode()
    bad = client.post("/services/new/", {**form, "name": "Orders_1"})
    assert bad.status_code == 400 and "Use a DNS-1123 label" in bad.content.decode()
    reserved = client.post("/services/new/", {**form, "name": "new"})
    assert reserved.status_code == 400 and "is reserved" in reserved.content.decode()
    other = client.post("/services/new/", {**form, "name": "billing", "team": 99999})
    assert other.status_code == 400 and "Select a valid choice" in other.content.decode()


def test_environment_create_form_and_fetch_token(client, admin_user, developer):
    client.force_login(developer)
    assert client.get("/environments/new/").status_code == 403
    assert client.post("/environments/new/", {"name": "x"}).status_code == 403
    client.force_login(admin_user)
    assert "Create the first environment" in client.get("/environments/").content.decode()
    form = {
        "name": "staging",
        "namespace": "payments-staging",
        "k8s_version": "1.34",
        "delivery_strategy": "initFetch",
        "hostpath_root": "/data/bin",
        "fetch_token_secret": "portal-fetch-token",
    }
    bad = client.post("/environments/new/", {**form, "k8s_version": "latest"})
    assert bad.status_code == 400 and "Give a Kubernetes version" in bad.content.decode()
    response = client.post("/environments/new/", form)
    assert response.status_code == 302 and response["Location"] == "/environments/staging/"
    page = client.get("/environments/staging/").content.decode()
    assert "portal-fetch-token" in page and 'id="fetch-token-form"' in page
    assert "Nothing deployed here yet" in page
    created = client.post("/environments/staging/")
    text = created.content.decode()
    assert created.status_code == 200 and created["Cache-Control"] == "no-store"
    assert "kubectl create secret generic portal-fetch-token --from-literal=token=bip_" in text
    assert "-n payments-staging" in text
    assert "bip_" not in client.get("/environments/staging/").content.decode()  # shown once
    assert client.post("/environments/new/", form).status_code == 409
    client.force_login(developer)
    page = client.get("/environments/staging/").content.decode()
    assert 'id="fetch-token-form"' not in page
    refused = client.post("/environments/staging/")
    assert refused.status_code == 403 and "Only platform admins" in refused.content.decode()


def test_deployment_create_form(dev_client, service_team, settings):
    from deployments.models import Deployment
    from tests.images.factories import ImageVersionFactory

    settings.PORTAL_URL = "https://portal.example.com"
    service = ServiceFactory(name="orders", team=service_team)
    page = dev_client.get("/services/orders/").content.decode()
    assert 'href="/services/orders/deploy/"' in page and "Not deployed anywhere yet" in page
    assert "No environments yet" in dev_client.get("/services/orders/deploy/").content.decode()
    env = EnvironmentFactory(name="dev", namespace="dev", delivery_strategy="initFetch")
    assert (
        "No approved runtime image" in dev_client.get("/services/orders/deploy/").content.decode()
    )
    runtime = ImageVersionFactory(base_image__name="runtime/debian")
    draft = ImageVersionFactory(base_image=runtime.base_image, state="candidate")
    binary = BinaryVersionFactory(service=service, version="1.0.0")
    BinaryVersionFactory(service=service, version="0.9.0", state="yanked")
    form_page = dev_client.get("/services/orders/deploy/").content.decode()
    assert 'value="-m release"' in form_page
    # Within the runtime select: another select's option may carry the same number.
    runtimes = form_page.split('<select name="runtime_version"')[1].split("</select>")[0]
    assert f'value="{runtime.pk}"' in runtimes and f'value="{draft.pk}"' not in runtimes
    assert "1.0.0 (x86_64" in form_page and "0.9.0" not in form_page
    data = {
        "environment": env.pk,
        "mode": "volume",
        "runtime_version": runtime.pk,
        "binary_version": binary.pk,
        "args": "-m release --name 'a b'",
        "replicas": 2,
        "cpu_request": "100m",
        "memory_request": "128Mi",
        "memory_limit": "256Mi",
        "ports": "8080, 9090",
        "env": "TZ=Asia/Shanghai\nGREETING=a=b",
    }
    bad = dev_client.post("/services/orders/deploy/", {**data, "memory_limit": "64Mi"})
    assert bad.status_code == 400
    assert "memory_limit 64Mi is below memory_request 128Mi" in bad.content.decode()
    from tests.i18n_support import compile_catalog

    compile_catalog()
    zh = dev_client.post(
        "/services/orders/deploy/",
        {**data, "memory_limit": "64Mi", "cpu_limit": "lots"},
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    ).content.decode()
    assert "memory_limit 64Mi 低于 memory_request 128Mi" in zh
    assert "cpu_limit 必须是 Kubernetes 数量值，例如 250m、1、512Mi、2Gi，实际为 " in zh
    quoting = dev_client.post("/services/orders/deploy/", {**data, "args": "'open"})
    assert quoting.status_code == 400 and "Cannot split the arguments" in quoting.content.decode()
    badenv = dev_client.post("/services/orders/deploy/", {**data, "env": "1X=y"})
    assert (
        badenv.status_code == 400
        and "env name &#x27;1X&#x27; must match" in badenv.content.decode()
    )
    response = dev_client.post("/services/orders/deploy/", data)
    assert response.status_code == 302
    deployment = Deployment.objects.get()
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    assert deployment.args == ["-m", "release", "--name", "a b"]
    assert deployment.env == [
        {"name": "TZ", "value": "Asia/Shanghai"},
        {"name": "GREETING", "value": "a=b"},
    ]
    assert (deployment.ports, deployment.replicas) == ([8080, 9090], 2)
    assert deployment.resources == {
        "cpu_request": "100m",
        "memory_request": "128Mi",
        "memory_limit": "256Mi",
    }
    # the environment is taken now: the form says so instead of offering it again
    assert "Deployed everywhere" in dev_client.get("/services/orders/deploy/").content.decode()
    # the first release from the deployment page
    release = dev_client.post(f"/deployments/{deployment.pk}/", {})
    assert release.status_code == 302
    assert "--name" in Release.objects.get().manifest_yaml


def test_deployment_create_form_is_for_developers(client, make_user, service_team, admin_user):
    ServiceFactory(name="orders", team=service_team)
    client.force_login(make_user("vic-viewer", service_team, "viewer"))
    assert client.get("/services/orders/deploy/").status_code == 403
    assert 'href="/services/orders/deploy/"' not in client.get("/services/orders/").content.decode()
    client.force_login(admin_user)  # not a member of the service's team
    assert client.get("/services/orders/deploy/").status_code == 403
    assert client.get("/services/Bad..Name/deploy/").status_code == 404


def test_release_form_shows_field_and_permission_errors(client, make_user, service_team):
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(service=service)
    yanked = BinaryVersionFactory(service=service, version="0.1.0", state="yanked")
    client.force_login(make_user("dev2", service_team, "developer"))
    response = client.post(f"/deployments/{deployment.pk}/", {"binary_version": yanked.pk})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    client.force_login(make_user("vic-viewer", service_team, "viewer"))
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'id="release-form"' not in page and "create releases" in page
    refused = client.post(f"/deployments/{deployment.pk}/", {})
    assert refused.status_code == 403 and "only team payments" in refused.content.decode()
    assert Release.objects.count() == 0


def _upload_request(user, name: str, *, query: str = ""):
    from django.test import RequestFactory

    request = RequestFactory().post(
        f"/services/{name}/upload/{query}",
        {"version": "1", "arch": "x86_64", "sha256": "0" * 64, "file": io.BytesIO(b"x" * 65536)},
    )
    request.user = user
    return request


def test_l3_upload_by_a_viewer_is_refused_before_the_body_is_read(make_user, service_team):
    from django.core.exceptions import PermissionDenied

    from deployments.views import binary_upload_view
    from portal.choices import Role

    ServiceFactory(name="orders", team=service_team)
    viewer = make_user("vera-viewer", service_team, Role.VIEWER)
    request = _upload_request(viewer, "orders")
    with pytest.raises(PermissionDenied, match="developer role"):
        binary_upload_view(request, "orders")
    assert request.META["wsgi.input"].read_started is False
    assert BinaryVersion.objects.count() == 0


def test_l3_upload_to_another_teams_service_is_refused_before_the_body_is_read(
    make_user, service_team
):
    from deployments.views import binary_upload_view
    from portal.choices import Role
    from portal.models import Team

    ServiceFactory(name="orders", team=service_team)
    other = make_user("otto-dev", Team.objects.create(name="search"), Role.DEVELOPER)
    request = _upload_request(other, "orders")
    with pytest.raises(Http404):
        binary_upload_view(request, "orders")
    assert request.META["wsgi.input"].read_started is False


def test_l3_upload_without_csrf_is_refused_before_the_body_is_read(developer, service_team):
    from deployments.views import binary_upload_view

    ServiceFactory(name="orders", team=service_team)
    request = _upload_request(developer, "orders")
    response = binary_upload_view(request, "orders")
    assert response.status_code == 403
    assert request.META["wsgi.input"].read_started is False
    assert BinaryVersion.objects.count() == 0


def test_l3_upload_form_sends_its_csrf_token_in_the_query(
    developer, service_team, binary_store_dir, elf_files
):
    import re as _re

    from django.test import Client

    ServiceFactory(name="orders", team=service_team)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(developer)
    page = strict.get("/services/orders/upload/").content.decode()
    action = _re.search(r'id="upload-form" action="([^"]+)"', page).group(1)
    path = elf_files["hello-static"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with path.open("rb") as fh:
        response = strict.post(
            "/services/orders/upload/" + action.replace("&amp;", "&"),
            {"file": fh, "version": "3.1.0", "arch": "amd64", "sha256": digest},
        )
    assert response.status_code == 302
    assert BinaryVersion.objects.get().sha256 == digest


def test_deploy_form_403_names_the_role_and_who_holds_it_in_both_languages(
    client, make_user, service_team, developer
):
    from tests.i18n_support import compile_catalog

    ServiceFactory(name="orders", team=service_team)
    client.force_login(make_user("vic-viewer", service_team))
    refused = client.get("/services/orders/deploy/")
    body = html.unescape(refused.content.decode())
    assert refused.status_code == 403
    assert "Only developers of team payments (or above) deploy orders." in body
    assert "Ask one of them: dave-dev." in body
    compile_catalog()
    chinese = html.unescape(
        client.get("/services/orders/deploy/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    )
    assert "只有团队 payments 的开发者（或更高角色）可以部署 orders。" in chinese
    assert "请联系其中一位：dave-dev。" in chinese
