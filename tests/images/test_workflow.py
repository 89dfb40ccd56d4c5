"""The image request workflow through the API: guards, reviewers, duplicates, publish."""

from __future__ import annotations

import pytest

from images.models import ImageRequest, ImageRequestEvent, ImageVersion
from images.recipes import RecipeError, dockerfile_from_lines, pin_dockerfile
from images.registry import RegistryClient, RegistryNotFound
from portal.choices import Role
from portal.jobs import job_execute
from portal.models import AuditEntry, Job
from tests.fixtures.registry import put_image
from tests.images.factories import BaseImageFactory, ImageVersionFactory, RegistryFactory

pytestmark = pytest.mark.django_db

DOCKERFILE = (
    "FROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
    "RUN echo hello > /hello\n"
)
STATES = [
    "draft",
    "submitted",
    "changes_requested",
    "approved",
    "rejected",
    "building",
    "scanning",
    "published",
    "failed",
]
ALLOWED = {
    ("submit", "draft"),
    ("submit", "changes_requested"),
    ("approve", "submitted"),
    ("reject", "submitted"),
    ("request-changes", "submitted"),
}
BODIES = {"reject": {"reason": "no"}, "request-changes": {"comment": "fix"}, "approve": {}}


@pytest.fixture
def catalog(platform_team):
    registry = RegistryFactory(url="http://127.0.0.1:5999", is_default=True)
    image = BaseImageFactory(name="runtime/debian", owner_team=platform_team, registry=registry)
    version = ImageVersionFactory(base_image=image, tag="12", state="approved")
    return {"registry": registry, "image": image, "version": version}


@pytest.fixture
def dev_api(token_client, service_team):
    return token_client(service_team, ["images:read", "images:write"])


@pytest.fixture
def admin_api(admin_user, api):
    api.force_login(admin_user)
    return api


def payload(**overrides):
    body = {
        "name": "runtime/debian-tools",
        "tag": "12-1",
        "kind": "runtime",
        "os_family": "debian",
        "os_version": "12",
        "recipe_kind": "dockerfile",
        "recipe": DOCKERFILE,
        "justification": "Our services need curl in the base.",
    }
    body.update(overrides)
    return body


def create(client, **overrides):
    response = client.post("/api/v1/image-requests/", payload(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_submit_computes_policy_report_and_timeline(catalog, dev_api):
    draft = create(dev_api)
    assert draft["state"] == "draft"
    assert draft["policy_report"] == {}
    response = dev_api.post(f"/api/v1/image-requests/{draft['id']}/submit/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "submitted"
    assert body["policy_verdict"] in ("pass", "warn")
    assert body["policy_report"]["bases"][0]["pinned_ref"].endswith(catalog["version"].digest)
    assert [e["kind"] for e in body["events"]] == ["created", "submitted"]
    actions = set(
        AuditEntry.objects.filter(object_id=str(draft["id"])).values_list("action", flat=True)
    )
    assert {"image_request.create", "image_request.submit"} <= actions


def test_policy_report_fails_for_unknown_base_and_approve_is_refused(catalog, dev_api, admin_api):
    body = create(dev_api, recipe="FROM docker.io/library/ubuntu:22.04\nRUN true\n", submit=True)
    assert body["state"] == "submitted"
    assert body["policy_verdict"] == "fail"
    rules = {f["rule"] for f in body["policy_report"]["findings"]}
    assert "BUILD001" in rules
    response = admin_api.post(f"/api/v1/image-requests/{body['id']}/approve/")
    assert response.status_code == 409
    assert "policy report" in response.json()["detail"]
    assert ImageRequest.objects.get(pk=body["id"]).state == "submitted"
    assert not Job.objects.filter(kind="images.build").exists()


def test_approve_returns_202_with_build_job(catalog, dev_api, admin_api):
    body = create(dev_api, submit=True)
    response = admin_api.post(f"/api/v1/image-requests/{body['id']}/approve/", {"comment": "ok"})
    assert response.status_code == 202, response.json()
    job = response.json()["job"]
    assert response["Location"] == f"/api/v1/jobs/{job['id']}/"
    assert job["kind"] == "images.build" and job["state"] == "queued"
    assert job["queue"] == "builds"
    request = ImageRequest.objects.get(pk=body["id"])
    assert request.state == "approved" and request.build_job_id == job["id"]
    # The requester's team sees the build job.
    assert dev_api.get(f"/api/v1/jobs/{job['id']}/").status_code == 200


def test_cancelling_the_build_job_fails_the_request(catalog, dev_api, admin_api):
    body = create(dev_api, submit=True)
    job_id = admin_api.post(f"/api/v1/image-requests/{body['id']}/approve/").json()["job"]["id"]
    response = admin_api.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.json()["state"] == "cancelled"
    request = ImageRequest.objects.get(pk=body["id"])
    assert request.state == "failed"
    assert request.error == f"The build job #{job_id} was cancelled."


def test_self_approval_is_forbidden(catalog, admin_api):
    body = create(admin_api, submit=True)
    response = admin_api.post(f"/api/v1/image-requests/{body['id']}/approve/")
    assert response.status_code == 403
    assert "another reviewer" in response.json()["detail"]
    assert ImageRequest.objects.get(pk=body["id"]).state == "submitted"


def test_self_approval_by_the_same_token_is_forbidden(catalog, token_client, platform_team):
    client = token_client(platform_team, ["images:read", "images:write", "images:review"])
    body = create(client, submit=True)
    assert client.post(f"/api/v1/image-requests/{body['id']}/approve/").status_code == 403


def test_duplicate_request_and_duplicate_approval_are_409(catalog, dev_api, admin_api):
    first = create(dev_api, submit=True)
    response = dev_api.post("/api/v1/image-requests/", payload(), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    # A second draft of the same tag may exist, but cannot be submitted while one is open.
    ImageRequest.objects.filter(pk=first["id"]).update(state="draft")
    second = create(dev_api)
    ImageRequest.objects.filter(pk=first["id"]).update(state="submitted")
    response = dev_api.post(f"/api/v1/image-requests/{second['id']}/submit/")
    assert response.status_code == 409, response.json()
    assert ImageRequest.objects.get(pk=second["id"]).state == "draft"
    # Approving twice: the second is an illegal transition and starts no second job.
    assert admin_api.post(f"/api/v1/image-requests/{first['id']}/approve/").status_code == 202
    response = admin_api.post(f"/api/v1/image-requests/{first['id']}/approve/")
    assert response.status_code == 409
    assert Job.objects.filter(kind="images.build").count() == 1


@pytest.mark.parametrize("state", STATES)
def test_every_illegal_transition_is_409_and_changes_nothing(state, catalog, dev_api, admin_api):
    body = create(dev_api)
    ImageRequest.objects.filter(pk=body["id"]).update(state=state)
    for action in ("submit", "approve", "reject", "request-changes"):
        if (action, state) in ALLOWED:
            continue
        client = dev_api if action == "submit" else admin_api
        events = ImageRequestEvent.objects.filter(request_id=body["id"]).count()
        audits = AuditEntry.objects.count()
        response = client.post(
            f"/api/v1/image-requests/{body['id']}/{action}/", BODIES.get(action, {})
        )
        assert response.status_code == 409, (action, state, response.json())
        assert response.json()["code"] in ("illegal_transition", "conflict")
        assert ImageRequest.objects.get(pk=body["id"]).state == state
        assert ImageRequestEvent.objects.filter(request_id=body["id"]).count() == events
        assert AuditEntry.objects.count() == audits
    assert not Job.objects.filter(kind="images.build").exists()


def test_request_changes_edit_and_resubmit(catalog, dev_api, admin_api):
    body = create(dev_api, submit=True)
    url = f"/api/v1/image-requests/{body['id']}/"
    assert admin_api.post(url + "request-changes/", {}).status_code == 400  # comment required
    response = admin_api.post(url + "request-changes/", {"comment": "Pin apt packages."})
    assert response.status_code == 200 and response.json()["state"] == "changes_requested"
    response = dev_api.patch(url, {"recipe": DOCKERFILE + "RUN true\n"}, format="json")
    assert response.status_code == 200, response.json()
    assert dev_api.post(url + "comment/", {"text": "Done, please look again."}).status_code == 201
    response = dev_api.post(url + "submit/")
    assert response.json()["state"] == "submitted"
    kinds = [e["kind"] for e in response.json()["events"]]
    assert kinds == ["created", "submitted", "changes_requested", "updated", "comment", "submitted"]
    # Not editable once submitted.
    assert dev_api.patch(url, {"recipe": DOCKERFILE}, format="json").status_code == 409


def test_reject_needs_a_reason(catalog, dev_api, admin_api):
    body = create(dev_api, submit=True)
    url = f"/api/v1/image-requests/{body['id']}/reject/"
    response = admin_api.post(url, {})
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    response = admin_api.post(url, {"reason": "Use runtime/debian as is."})
    assert response.json()["state"] == "rejected"


def test_reviewer_scope_and_role_are_required(catalog, dev_api, make_user, service_team, api):
    body = create(dev_api, submit=True)
    url = f"/api/v1/image-requests/{body['id']}/approve/"
    assert dev_api.post(url).status_code == 403  # token without images:review
    maintainer = make_user("mia", service_team, Role.MAINTAINER)
    api.force_login(maintainer)
    assert api.post(url).status_code == 403  # the role is not platform-admin
    assert ImageRequest.objects.get(pk=body["id"]).state == "submitted"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"recipe": ""}, "recipe"),
        ({"recipe": "RUN true\n"}, "no FROM"),
        ({"recipe": "FROM $BASE\n"}, "build argument"),
        ({"recipe_kind": "bootstrap", "recipe": "suite: [1"}, "not valid YAML"),
        ({"recipe_kind": "bootstrap", "recipe": "suite: bookworm\nfoo: 1\n"}, "Unknown bootstrap"),
        ({"recipe_kind": "bootstrap", "recipe": "suite: bookworm\npackages: [Bad!]"}, "package"),
        ({"name": "Not A Name"}, "repository name"),
        ({"tag": "-bad"}, "tag"),
        ({"justification": " "}, "justification"),
        ({"kind": "build"}, None),  # a new image may be of either kind
    ],
)
def test_bad_input_is_400_with_a_clear_message(catalog, dev_api, overrides, message):
    response = dev_api.post("/api/v1/image-requests/", payload(**overrides), format="json")
    if message is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.json()
    assert message.lower() in response.json()["detail"].lower()
    assert not ImageRequest.objects.exists()


def test_kind_must_match_an_existing_catalog_entry(catalog, dev_api):
    response = dev_api.post(
        "/api/v1/image-requests/", payload(name="runtime/debian", kind="build"), format="json"
    )
    assert response.status_code == 400
    assert "runtime image" in response.json()["detail"]


def test_requests_of_other_teams_are_404(catalog, dev_api, token_client, make_user):
    from portal.models import Team

    body = create(dev_api)
    other = Team.objects.create(name="search")
    client = token_client(other, ["images:read", "images:write"])
    assert client.get(f"/api/v1/image-requests/{body['id']}/").status_code == 404
    assert client.get("/api/v1/image-requests/").json()["count"] == 0


@pytest.fixture
def real_catalog(catalog, scratch_registry):
    """`catalog` on a registry of its own: runtime/debian:12 is a real image there."""
    registry = catalog["registry"]
    registry.url = scratch_registry.url
    registry.tls_verify = False
    registry.save()
    digest = put_image(scratch_registry.url, "runtime/debian", "12")
    ImageVersion.objects.filter(pk=catalog["version"].pk).update(digest=digest)
    catalog["version"].refresh_from_db()
    return catalog


def registry_digest(registry, repository: str, tag: str) -> str | None:
    """The digest `repository:tag` has in the registry now (None: no such tag)."""
    with RegistryClient(registry.url, verify=False) as client:
        try:
            return client.get_manifest(repository, tag)[2]
        except RegistryNotFound:
            return None


def candidate_in_registry(catalog, tag: str, job_id: int = 7) -> ImageVersion:
    """A candidate pushed the way builds push: under `<tag>-candidate-<job>` only."""
    registry = catalog["registry"]
    digest = put_image(registry.url, "runtime/debian", f"{tag}-candidate-{job_id}")
    return ImageVersionFactory(
        base_image=catalog["image"], registry=registry, tag=tag, digest=digest, state="candidate"
    )


def test_publish_supersedes_the_previous_approved_version(real_catalog, admin_api, dev_api):
    # Changed with M2: publishing now moves the registry tag, so the candidate is a real image
    # in the test registry (it was a made-up digest in a registry nobody ran).
    image = real_catalog["image"]
    old = real_catalog["version"]
    candidate = candidate_in_registry(real_catalog, "12-1")
    request = ImageRequest.objects.get(pk=create(dev_api, submit=True)["id"])
    ImageRequest.objects.filter(pk=request.pk).update(state="scanning", image_version=candidate)
    response = dev_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 403  # images:review needed
    response = admin_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "approved"
    old.refresh_from_db()
    assert old.state == "superseded" and old.superseded_by_id == candidate.pk
    assert ImageRequest.objects.get(pk=request.pk).state == "published"
    assert admin_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/").status_code == 409
    detail = admin_api.get(f"/api/v1/image-versions/{candidate.pk}/").json()
    assert detail["base_image"] == "runtime/debian"
    assert ImageVersion.objects.filter(base_image=image, state="approved").count() == 1


# --- M2: a request may not name another team's image, nor a tag that has a version ---------


def test_m2_service_team_request_for_platform_owned_image_is_refused(catalog, dev_api):
    for name, kind in (("runtime/debian", "runtime"), ("binaries/orders", "runtime")):
        body = payload(name=name, kind=kind, tag="12-patched", submit=True)
        response = dev_api.post("/api/v1/image-requests/", body, format="json")
        if name.startswith("binaries/"):
            assert response.status_code == 400, response.json()
            assert "reserved for the portal's binary artifacts" in response.json()["detail"]
        else:
            assert response.status_code == 403, response.json()
            detail = response.json()["detail"]
            assert "runtime/debian belongs to team platform" in detail
            assert "new name" in detail
    assert not ImageRequest.objects.exists()
    # The review's request: runtime/debian:12 with a changed recipe, by payments.
    body = payload(name="runtime/debian", tag="12", submit=True)
    assert dev_api.post("/api/v1/image-requests/", body, format="json").status_code == 403
    assert not ImageRequest.objects.exists()


@pytest.fixture
def platform_dev_api(token_client, platform_team):
    return token_client(platform_team, ["images:read", "images:write"])


def test_m2_request_for_existing_published_tag_is_refused(catalog, platform_dev_api):
    version = catalog["version"]
    body = payload(name="runtime/debian", tag="12", submit=True)
    response = platform_dev_api.post("/api/v1/image-requests/", body, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "tag_exists"
    assert (
        f"runtime/debian:12 already has version {version.digest} (approved)"
        in (response.json()["detail"])
    )
    assert "request a new tag" in response.json()["detail"]
    assert not ImageRequest.objects.exists()
    # A tag seen on the digest counts too (registry sync records every tag of a digest).
    ImageVersion.objects.filter(pk=version.pk).update(tags=["12", "12.5"])
    body = payload(name="runtime/debian", tag="12.5")
    assert platform_dev_api.post("/api/v1/image-requests/", body, format="json").status_code == 409
    # Update: renaming a draft's tag onto a published one.
    draft = create(platform_dev_api, name="runtime/debian", tag="12-7")
    url = f"/api/v1/image-requests/{draft['id']}/"
    response = platform_dev_api.patch(url, {"tag": "12"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "tag_exists"
    assert ImageRequest.objects.get(pk=draft["id"]).tag == "12-7"
    # Submit: the tag got a version after the draft was written.
    ImageVersionFactory(base_image=catalog["image"], tag="12-7", state="candidate")
    response = platform_dev_api.post(url + "submit/")
    assert response.status_code == 409 and response.json()["code"] == "tag_exists"
    assert ImageRequest.objects.get(pk=draft["id"]).state == "draft"


def test_m2_build_job_refuses_a_tag_that_got_a_version(
    catalog, platform_dev_api, admin_api, settings
):
    settings.JOB_HEARTBEAT_SECONDS = 3600  # the test transaction holds the job row
    body = create(platform_dev_api, name="runtime/debian", tag="12-8", submit=True)
    response = admin_api.post(f"/api/v1/image-requests/{body['id']}/approve/")
    assert response.status_code == 202, response.json()
    taken = ImageVersionFactory(base_image=catalog["image"], tag="12-8", state="candidate")
    job_id = response.json()["job"]["id"]
    assert job_execute(job_id) == "failed"
    job = Job.objects.get(pk=job_id)
    assert f"runtime/debian:12-8 already has version {taken.digest}" in job.error
    assert "versions are immutable" in job.error
    assert ImageRequest.objects.get(pk=body["id"]).state == "failed"
    assert ImageVersion.objects.filter(base_image=catalog["image"], tag="12-8").count() == 1


def test_m2_publish_moves_the_public_tag_and_is_idempotent(real_catalog, admin_api):
    registry = real_catalog["registry"]
    old = real_catalog["version"]
    candidate = candidate_in_registry(real_catalog, "12-2", job_id=41)
    assert registry_digest(registry, "runtime/debian", "12-2") is None  # not before publish
    assert registry_digest(registry, "runtime/debian", "12") == old.digest
    # A resolve of the public tag keeps answering the approved digest meanwhile.
    resolved = admin_api.get("/api/v1/base-images/resolve/", {"ref": "runtime/debian:12"}).json()
    assert resolved["digest"] == old.digest and resolved["approved"] is True
    response = admin_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert registry_digest(registry, "runtime/debian", "12-2") == candidate.digest
    assert registry_digest(registry, "runtime/debian", "12") == old.digest
    # The tag already where it belongs (a publish whose commit failed after the tag moved):
    # publishing again only commits.
    again = candidate_in_registry(real_catalog, "12-3", job_id=42)
    with RegistryClient(registry.url, verify=False) as client:
        data, media_type, _ = client.get_manifest("runtime/debian", again.digest)
        client.put_manifest("runtime/debian", "12-3", data, media_type)
    response = admin_api.post(f"/api/v1/image-versions/{again.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert registry_digest(registry, "runtime/debian", "12-3") == again.digest


def test_m2_publish_with_the_registry_down_publishes_nothing(
    real_catalog, admin_api, dev_api, scratch_registry
):
    old = real_catalog["version"]
    candidate = candidate_in_registry(real_catalog, "12-4")
    request = ImageRequest.objects.get(pk=create(dev_api, submit=True)["id"])
    ImageRequest.objects.filter(pk=request.pk).update(state="scanning", image_version=candidate)
    audits = AuditEntry.objects.count()
    with scratch_registry.down():
        response = admin_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 503, response.json()
    assert response.json()["code"] == "registry_unavailable"
    detail = response.json()["detail"]
    assert "runtime/debian:12-4" in detail and "Nothing was published" in detail
    assert "publish it again" in detail
    candidate.refresh_from_db()
    old.refresh_from_db()
    assert candidate.state == "candidate" and old.state == "approved"
    assert ImageRequest.objects.get(pk=request.pk).state == "scanning"
    assert AuditEntry.objects.count() == audits
    assert registry_digest(real_catalog["registry"], "runtime/debian", "12-4") is None
    # Once the registry answers, the same publish goes through.
    response = admin_api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert registry_digest(real_catalog["registry"], "runtime/debian", "12-4") == candidate.digest


def test_recipe_helpers_find_and_pin_from_lines():
    text = (
        "# syntax\nFROM --platform=linux/amd64 build/gcc:12 AS builder\nRUN make \\\n"
        "  FROM not-a-from\nFROM runtime/debian:12\nCOPY --from=builder /a /a\nFROM builder\n"
    )
    lines = dockerfile_from_lines(text)
    assert [(f.line, f.image, f.external) for f in lines] == [
        (2, "build/gcc:12", True),
        (5, "runtime/debian:12", True),
        (7, "builder", False),
    ]
    pinned = pin_dockerfile(text, {5: "r:5000/runtime/debian@sha256:" + "a" * 64})
    assert "FROM r:5000/runtime/debian@sha256:" + "a" * 64 + "\n" in pinned
    assert pinned.count("\n") == text.count("\n")
    with pytest.raises(RecipeError, match="no FROM"):
        dockerfile_from_lines("RUN true\n")


# --- H1: four eyes compare persons, across session and token, in both directions ---------------


def _ui_create_and_submit(client) -> ImageRequest:
    body = payload()
    body.update(submit="1", toolchain="")
    response = client.post("/image-requests/new/", body)
    assert response.status_code == 302, response.content.decode()[:2000]
    request = ImageRequest.objects.get()
    assert request.state == "submitted"
    return request


def _tokens_page_secret(client, team, scopes) -> str:
    response = client.post("/tokens/", {"team": team.pk, "name": "mine", "scopes": scopes})
    html = response.content.decode()
    return html.split('<pre id="token-secret"><code>')[1].split("</code>")[0]


def _to_scanning(request: ImageRequest, catalog) -> ImageVersion:
    candidate = ImageVersionFactory(base_image=catalog["image"], tag="12-1", state="candidate")
    ImageRequest.objects.filter(pk=request.pk).update(state="scanning", image_version=candidate)
    return candidate


def test_h1_token_of_requester_cannot_approve(catalog, client, api, admin_user, platform_team):
    """UI request, then the same person's token from the Tokens page: approve and publish 403."""
    client.force_login(admin_user)
    request = _ui_create_and_submit(client)
    secret = _tokens_page_secret(client, platform_team, ["images:read", "images:review"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.post(f"/api/v1/image-requests/{request.pk}/approve/")
    assert response.status_code == 403
    assert "another reviewer must approve it" in response.json()["detail"]
    assert ImageRequest.objects.get(pk=request.pk).state == "submitted"
    assert not Job.objects.filter(kind="images.build").exists()
    candidate = _to_scanning(request, catalog)
    response = api.post(f"/api/v1/image-versions/{candidate.pk}/publish/")
    assert response.status_code == 403
    assert "another reviewer must publish it" in response.json()["detail"]
    candidate.refresh_from_db()
    assert candidate.state == "candidate"


def test_h1_request_by_token_cannot_be_approved_in_the_ui_by_its_creator(
    catalog, client, api, admin_user, platform_team, make_token
):
    secret = make_token(platform_team, ["images:read", "images:write"], user=admin_user)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = create(api, submit=True)
    assert body["state"] == "submitted"
    request = ImageRequest.objects.get(pk=body["id"])
    client.force_login(admin_user)
    assert client.post(f"/image-requests/{request.pk}/approve/").status_code == 403
    assert "approve" not in client.get(f"/image-requests/{request.pk}/").context["actions"]
    assert request.requested_by == admin_user  # the token's request is its creator's
    assert ImageRequest.objects.get(pk=request.pk).state == "submitted"
    candidate = _to_scanning(request, catalog)
    assert client.post(f"/image-requests/{request.pk}/publish/").status_code == 403
    candidate.refresh_from_db()
    assert candidate.state == "candidate"


def test_h1_legacy_request_of_a_token_counts_as_its_creators(catalog, admin_user, platform_team):
    """Requests stored before requested_by was set for tokens: the token's creator counts."""
    from django.core.exceptions import PermissionDenied

    from images.services import image_request_approve
    from portal.actors import Actor
    from portal.auth import token_create

    token, _ = token_create(
        team=platform_team, name="old", scopes=["images:write"], actor=Actor(user=admin_user)
    )
    request = ImageRequest.objects.create(
        **{k: v for k, v in payload().items()},
        state="submitted",
        team=platform_team,
        requested_by_token=token,
    )
    with pytest.raises(PermissionDenied, match="another reviewer"):
        image_request_approve(request=request, actor=Actor(user=admin_user))


def test_h1_another_admins_token_approves_and_a_token_of_nobody_cannot(
    catalog, api, dev_api, make_user, make_token, platform_team
):
    from portal.actors import Actor
    from portal.auth import token_create

    body = create(dev_api, submit=True)
    url = f"/api/v1/image-requests/{body['id']}/approve/"
    _, nobody = token_create(
        team=platform_team,
        name="legacy",
        scopes=["images:read", "images:review"],
        actor=Actor.system_actor("create_token"),
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {nobody}")
    response = api.post(url)
    assert response.status_code == 403
    assert "no person behind it" in response.json()["detail"]
    reviewer = make_user("bob-admin", platform_team, Role.PLATFORM_ADMIN)
    api.credentials(
        HTTP_AUTHORIZATION=f"Bearer {make_token(platform_team, ['images:review'], user=reviewer)}"
    )
    assert api.post(url).status_code == 202
    assert ImageRequest.objects.get(pk=body["id"]).reviewed_by == reviewer  # the token's person


def test_a_services_permission_denied_keeps_its_message_and_says_permission_denied(
    catalog, dev_api
):
    # images.services raise Django's PermissionDenied; the API answered code "error" for it.
    body = {
        "name": "runtime/debian",
        "tag": "12-patched",
        "kind": "runtime",
        "os_family": "debian",
        "os_version": "12",
        "recipe_kind": "dockerfile",
        "justification": "patch",
        "recipe": "FROM runtime/debian:12\n",
    }
    response = dev_api.post("/api/v1/image-requests/", body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "belongs to team" in response.json()["detail"]
