"""Build images with buildah and mmdebstrap, without a Docker daemon.

Pure package, no Django: the build job calls these functions and records what they return.
Each function takes a `log` callback (one line at a time, in the caller's thread) and a
`should_cancel` callback, and raises `BuildError` naming the failed step and exit code.

* `config`: `BuilderConfig` (buildah's storage, TLS, credentials, timeout) and input checks.
* `errors`: `BuildError` and its kinds (cancelled, timed out, registry unavailable).
* `run`: one tool step through `portal.commands.run_command`, its failure classified.
* `bootstrap`: a root filesystem tarball with mmdebstrap.
* `buildah`: images committed to buildah's storage (from a rootfs, from a Dockerfile), removed.
* `sandbox`: what a Dockerfile may do (checked before `buildah bud`), and the network/PID
  namespace its RUN steps run in.
* `push`: a local image pushed to a registry.
* `platform`: architecture names as image configs spell them.
"""

from .bootstrap import (
    DEFAULT_LOCALE,
    RUNTIME_ENV,
    BootstrapResult,
    BootstrapSpec,
    bootstrap_command,
    bootstrap_rootfs,
)
from .buildah import (
    ImageResult,
    build_dockerfile,
    image_from_rootfs,
    oci_labels,
    pull_images,
    remove_image,
)
from .config import BuilderConfig, CancelFn, LogFn, mirror_allowed
from .errors import BuildCancelled, BuildError, BuildTimeout, PullUnavailable, PushUnavailable
from .platform import OCI_ARCHITECTURES, oci_architecture
from .push import push_image
from .sandbox import check_recipe, recipe_escapes

__all__ = [
    "DEFAULT_LOCALE",
    "RUNTIME_ENV",
    "BootstrapResult",
    "BootstrapSpec",
    "BuildCancelled",
    "BuildError",
    "BuildTimeout",
    "BuilderConfig",
    "CancelFn",
    "ImageResult",
    "LogFn",
    "OCI_ARCHITECTURES",
    "PullUnavailable",
    "PushUnavailable",
    "bootstrap_command",
    "bootstrap_rootfs",
    "build_dockerfile",
    "check_recipe",
    "image_from_rootfs",
    "oci_architecture",
    "mirror_allowed",
    "oci_labels",
    "pull_images",
    "push_image",
    "recipe_escapes",
    "remove_image",
]
