"""What every job on the `builds` queue uses: the batched job log, buildah's settings for a
registry, and retries while a registry is unavailable (the image build, the artifact push)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings

from images.texts import _
from portal.jobs import JobContext, JobFailure, job_append_log, job_set_progress

from ..builder import BuilderConfig, PullUnavailable, PushUnavailable, push_image
from ..models import Registry
from ..recipes import allowed_mirrors
from ..registry import ManifestInfo, RegistryUnavailable

T = TypeVar("T")
_STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
TRANSIENT = (PushUnavailable, PullUnavailable, RegistryUnavailable)


class JobLog:
    """Tool output → job log, batched (one UPDATE per `interval`), with STEP-based progress."""

    def __init__(self, ctx: JobContext, *, interval: float = 0.5, span: tuple[int, int] = (5, 70)):
        self.ctx = ctx
        self.interval = interval
        self.span = span
        self._lines: list[str] = []
        self._size = 0
        self._flushed_at = time.monotonic()

    def __call__(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        match = _STEP_RE.match(line)
        if match:
            self.flush()
            done, total = int(match.group(1)) - 1, max(1, int(match.group(2)))
            low, high = self.span
            job_set_progress(
                job_id=self.ctx.job.pk,
                percent=low + (high - low) * done // total,
                step=line[:200],
            )
        elif self._size > 32_768 or time.monotonic() - self._flushed_at >= self.interval:
            self.flush()

    def portal(self, text: str) -> None:
        """A line of the portal's own."""
        self(f"[portal] {text}")
        self.flush()

    def progress(self, percent: int, step: str) -> None:
        """Flush, then report progress (its own log line)."""
        self.flush()
        self.ctx.progress(percent, step)

    def flush(self) -> None:
        """Write the buffered lines."""
        if self._lines:
            job_append_log(job_id=self.ctx.job.pk, text="\n".join(self._lines) + "\n")
            self._lines.clear()
            self._size = 0
        self._flushed_at = time.monotonic()


def builder_config(registry: Registry) -> BuilderConfig:
    """buildah settings for pushing to `registry` (TLS and credentials from the Registry)."""
    username, password = registry.credentials()
    if (username is None) != (password is None):
        raise JobFailure(
            _(
                "Registry %(registry)s: set both PORTAL_REGISTRY_%(env)s_USERNAME and "
                "_PASSWORD, or neither.",
                registry=registry.name,
                env=registry.credentials_env,
            )
        )
    for directory in (settings.PORTAL_BUILDAH_ROOT, settings.PORTAL_BUILDAH_RUNROOT):
        Path(directory).mkdir(parents=True, exist_ok=True)
    return BuilderConfig(
        storage_root=settings.PORTAL_BUILDAH_ROOT,
        run_root=settings.PORTAL_BUILDAH_RUNROOT,
        # buildah's --tls-verify=false is also what lets it speak plain HTTP at all.
        tls_verify=registry.tls_verify and registry.uses_tls,
        registry_username=username,
        registry_password=password,
        timeout=settings.PORTAL_BUILD_TIMEOUT_SECONDS,
        allowed_mirrors=allowed_mirrors(),
    )


def retry_registry(ctx: JobContext, log: JobLog, what: str, call: Callable[[], T]) -> T:
    """Run `call`, retrying registry unavailability with exponential backoff, then fail."""
    budget = max(0, int(settings.PORTAL_BUILD_REGISTRY_RETRIES))
    delay = float(settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS)
    for attempt in range(budget + 1):
        try:
            return call()
        except TRANSIENT as exc:
            message = getattr(exc, "message", None) or str(exc)
            if attempt == budget:
                raise JobFailure(
                    _(
                        "%(what)s: the registry stayed unavailable after %(attempts)s "
                        "attempts: %(error)s",
                        what=what,
                        attempts=budget + 1,
                        error=message,
                    )
                ) from exc
            wait = delay * 2**attempt
            log.portal(
                f"{what}: registry unavailable ({message[:300]}); retry {attempt + 1} of "
                f"{budget} in {wait:g} s"
            )
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                ctx.check_cancelled()
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    raise AssertionError("unreachable")  # pragma: no cover


def push_and_read_back(
    ctx: JobContext,
    log: JobLog,
    *,
    local_tag: str,
    registry: Registry,
    repository: str,
    tag: str,
    config: BuilderConfig,
    progress: tuple[int, int],
) -> ManifestInfo:
    """Push `local_tag` to `registry/repository:tag` and read the manifest back, each step
    retried while the registry is unavailable; the registry's word on the digest wins.

    Args:
        progress: the job's percentages at the push and at the read-back.
    """
    destination = f"{registry.host}/{repository}:{tag}"
    log.progress(progress[0], f"pushing to {destination}")
    pushed = retry_registry(
        ctx,
        log,
        f"push to {registry.host}",
        lambda: push_image(
            local_tag, destination, config=config, log=log, should_cancel=ctx.should_cancel
        ),
    )
    log.progress(progress[1], f"reading the pushed manifest back from {registry.host}")

    def read_back() -> ManifestInfo:
        with registry.client() as client:
            return client.manifest_info(repository, tag)

    info = retry_registry(ctx, log, f"read back from {registry.host}", read_back)
    if info.digest != pushed:
        log.portal(f"note: buildah reported {pushed}, the registry serves {info.digest}")
    return info
