"""A single-pass Dockerfile parser that keeps line numbers and never raises on bad syntax.

It follows BuildKit's front end where it matters to the policy: parser directives
(`# escape=`), continuation lines (comments and blank lines inside them are dropped; an
instruction's line is the line it starts on), heredocs in RUN/COPY/ADD, global `ARG`s and
their substitution in `FROM` (`$X`, `${X}`, `${X:-default}`, `${X-default}`, `${X:+alt}`),
stage names and stage references (`FROM builder`, `COPY --from=builder|0`).
Problems are returned as `Problem`s (rule id, line, message), never raised.

Three rooms:

* `syntax`: the parser's rule ids and limits, and what it returns (`ParsedDockerfile` …).
* `lines`: text to logical instructions: directives, continuation lines, heredocs.
* `stages`: `parse_dockerfile`: ARG substitution, FROM lines, stage names and references.
"""

from __future__ import annotations

from images.policy.parser.stages import PLATFORM_ARGS, parse_dockerfile, substitute
from images.policy.parser.syntax import (
    BEFORE_FROM,
    DUPLICATE_STAGE,
    INSTRUCTIONS,
    MALFORMED_FROM,
    MAX_STAGES,
    NO_FROM,
    TOO_MANY_STAGES,
    UNDEFINED_ARG,
    UNKNOWN_INSTRUCTION,
    UNKNOWN_STAGE,
    UNTERMINATED,
    Instruction,
    ParsedDockerfile,
    ParsedStage,
    Problem,
)

__all__ = [
    "BEFORE_FROM",
    "DUPLICATE_STAGE",
    "INSTRUCTIONS",
    "Instruction",
    "MALFORMED_FROM",
    "MAX_STAGES",
    "NO_FROM",
    "PLATFORM_ARGS",
    "ParsedDockerfile",
    "ParsedStage",
    "Problem",
    "TOO_MANY_STAGES",
    "UNDEFINED_ARG",
    "UNKNOWN_INSTRUCTION",
    "UNKNOWN_STAGE",
    "UNTERMINATED",
    "parse_dockerfile",
    "substitute",
]
