"""Job kinds (what a job does, its queue, timeout and attempts) and the framework's exceptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ..models import Job

if TYPE_CHECKING:
    from .runner import JobContext


class IllegalTransition(Exception):  # noqa: N818 - the domain's name
    """The job is not in a state that allows this change."""


class JobCancelled(Exception):  # noqa: N818 - the domain's name
    """Raised inside a handler when the job was cancelled while it ran."""


class JobFailure(Exception):
    """A handler's clean failure: the message becomes the job's error. `retry` requeues it."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class JobKind:
    """A registered kind of job: its handler, queue, time limit and attempt budget."""

    name: str
    handler: Callable[[JobContext], dict[str, Any] | None]
    queue: str
    timeout_seconds: int
    max_attempts: int
    title: str
    on_failure: Callable[[Job], None] | None = None


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    queue: str = "default",
    timeout_seconds: int = 3600,
    max_attempts: int = 3,
    title: str = "",
    on_failure: Callable[[Job], None] | None = None,
) -> Callable[[Callable[[JobContext], dict[str, Any] | None]], Callable[..., Any]]:
    """Register a handler for a job kind (decorator).

    `on_failure(job)` is called whenever a job of this kind ends failed or cancelled, however
    that happened (the handler raised, the reaper gave up on a lost worker, a user cancelled),
    inside the transaction of that change: the place to move the job's domain object along.
    """
    if queue not in settings.CELERY_TASK_QUEUES_NAMES:
        raise ValueError(f"Unknown queue {queue!r}")

    def register(handler: Callable[[JobContext], dict[str, Any] | None]) -> Callable[..., Any]:
        _KINDS[name] = JobKind(
            name, handler, queue, timeout_seconds, max_attempts, title or name, on_failure
        )
        return handler

    return register


def get_job_kind(name: str) -> JobKind:
    """The registered kind `name` (importing the apps' job modules first)."""
    _load_kinds()
    try:
        return _KINDS[name]
    except KeyError as exc:
        raise ValueError(f"Unknown job kind {name!r}") from exc


def job_kinds() -> dict[str, JobKind]:
    """All registered kinds."""
    _load_kinds()
    return dict(_KINDS)


_loaded = False


def _load_kinds() -> None:
    global _loaded
    if not _loaded:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
        _loaded = True
