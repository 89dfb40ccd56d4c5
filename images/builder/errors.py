"""The errors a build step raises: what failed, where, with the tool's last output."""

from __future__ import annotations


class BuildError(Exception):
    """A build step failed.

    Attributes:
        message: what failed, naming the step and exit code.
        output_tail: the last lines of the tool's output.
        step: the step that failed (e.g. `STEP 2/3: RUN make`), or the tool action.
        returncode: the tool's exit code (or the RUN command's, when known).
    """

    def __init__(
        self,
        message: str,
        output_tail: str = "",
        *,
        step: str = "",
        returncode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.output_tail = output_tail
        self.step = step
        self.returncode = returncode


class BuildCancelled(BuildError):
    """The build was cancelled; its processes were killed."""


class BuildTimeout(BuildError):
    """The build ran past its timeout; its processes were killed."""


class PushUnavailable(BuildError):
    """The registry could not be reached during a push: transient, worth retrying."""


class PullUnavailable(BuildError):
    """The base image's registry could not be reached (FROM step): transient, worth retrying."""
