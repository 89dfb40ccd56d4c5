"""Writes of the images app, one module per entity or operation.

* `catalog`: catalog entries, their derived status, versions found in registries.
* `dockerfile`: the Dockerfile check (the API endpoint and the UI page).

Callers import from `images.services`; the modules are how the code is kept, not an API.
"""

from .catalog import (
    ALPINE_NOTE,
    SCRATCH_NOTE,
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

__all__ = [
    "ALPINE_NOTE",
    "POLICY_FALLBACK_RULE",
    "SCRATCH_NOTE",
    "DerivedStatus",
    "DockerfileCheck",
    "ServiceContextResolver",
    "base_image_apply_lifecycle",
    "base_image_create",
    "derive_status",
    "dockerfile_check",
    "dockerfile_service_context",
    "dockerfile_service_resolver_register",
    "image_version_record",
]
