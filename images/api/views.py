"""API views of the images app, one module per resource (re-exported here for the router).

* `base_images`: `/api/v1/base-images/` (and the compatibility matrix).
* `dockerfile_checks`: `POST /api/v1/dockerfile-checks/`.
* `image_requests`: `/api/v1/image-requests/`.
* `image_versions`: `/api/v1/image-versions/`.

Advisories, advisory imports, findings, scans, curation and waivers have their own modules.
"""

from .base_images import BaseImageViewSet
from .dockerfile_checks import MAX_CHECK_BODY_BYTES, DockerfileCheckViewSet, SarifRenderer
from .image_requests import ImageRequestViewSet
from .image_versions import ImageVersionViewSet

__all__ = [
    "BaseImageViewSet",
    "DockerfileCheckViewSet",
    "ImageRequestViewSet",
    "ImageVersionViewSet",
    "MAX_CHECK_BODY_BYTES",
    "SarifRenderer",
]
