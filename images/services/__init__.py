"""Writes of the images app, one module per entity or operation.

* `catalog`: catalog entries, their derived status, versions found in registries.
* `dockerfile`: the Dockerfile check (the API endpoint and the UI page).
* `requests`: image requests: create, edit, submit, comment, review (approve starts the build).
* `reports`: the policy report of a request's recipe.
* `builds`: what the build job does to its request (building, built, failed).
* `publish`: a candidate version becomes approved (if the gate lets it).
* `gate`: the publish gate; `waivers`: waiver requests, decisions and coverage (a package:
  `request`, `decisions`, `coverage`).

Callers import from `images.services`; the modules are how the code is kept, not an API.
"""

from ..status_notes import ALPINE_NOTE, SCRATCH_NOTE
from .builds import (
    BUILD_JOB_KIND,
    auto_publish_enabled,
    build_idempotency_key,
    image_request_build_failed,
    image_request_mark_building,
    image_request_mark_built,
    image_request_mark_failed,
    runtime_env_for,
)
from .catalog import (
    DerivedStatus,
    base_image_apply_lifecycle,
    base_image_create,
    derive_status,
    image_version_record,
)
from .dockerfile import (
    POLICY_FALLBACK_RULE,
    DockerfileCheck,
    ServiceContextResolver,
    dockerfile_check,
    dockerfile_service_context,
    dockerfile_service_resolver_register,
)
from .gate import (
    GateBlocked,
    GateResult,
    image_version_apply_gate,
    image_version_gate,
    image_version_require_gate,
)
from .publish import image_version_announce_revoked, image_version_publish
from .reports import image_request_policy_report
from .requests import (
    image_request_approve,
    image_request_comment,
    image_request_create,
    image_request_reject,
    image_request_request_changes,
    image_request_submit,
    image_request_update,
)
from .waivers import (
    active_waivers_for,
    waiver_approve,
    waiver_list_for_actor,
    waiver_reject,
    waiver_request,
    waiver_revoke,
    waiver_service_resolver_register,
    waivers_openvex,
)

__all__ = [
    "GateBlocked",
    "GateResult",
    "active_waivers_for",
    "image_version_apply_gate",
    "image_version_gate",
    "image_version_require_gate",
    "waiver_approve",
    "waiver_list_for_actor",
    "waiver_reject",
    "waiver_request",
    "waiver_revoke",
    "waiver_service_resolver_register",
    "waivers_openvex",
    "ALPINE_NOTE",
    "BUILD_JOB_KIND",
    "POLICY_FALLBACK_RULE",
    "SCRATCH_NOTE",
    "DerivedStatus",
    "DockerfileCheck",
    "ServiceContextResolver",
    "auto_publish_enabled",
    "base_image_apply_lifecycle",
    "base_image_create",
    "build_idempotency_key",
    "derive_status",
    "dockerfile_check",
    "dockerfile_service_context",
    "dockerfile_service_resolver_register",
    "image_request_approve",
    "image_request_build_failed",
    "image_request_comment",
    "image_request_create",
    "image_request_mark_building",
    "image_request_mark_built",
    "image_request_mark_failed",
    "image_request_policy_report",
    "image_request_reject",
    "image_request_request_changes",
    "image_request_submit",
    "image_request_update",
    "image_version_announce_revoked",
    "image_version_publish",
    "image_version_record",
    "runtime_env_for",
]
