"""What the Dockerfile parser knows and returns: instructions, rule ids, limits, parsed shapes."""

from __future__ import annotations

from dataclasses import dataclass

from images.texts import Message

MAX_STAGES = 50

INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
# Rule ids of the problems the parser itself reports (titles live in defaults.yaml).
NO_FROM = "BIP001"
UNKNOWN_INSTRUCTION = "BIP020"
UNTERMINATED = "BIP021"
TOO_MANY_STAGES = "BIP022"
MALFORMED_FROM = "BIP023"
UNDEFINED_ARG = "BIP024"
UNKNOWN_STAGE = "BIP025"
BEFORE_FROM = "BIP026"
DUPLICATE_STAGE = "BIP027"


@dataclass(frozen=True)
class Problem:
    """Something wrong with the Dockerfile's syntax or structure, tied to a line."""

    rule: str
    line: int
    message: Message


@dataclass(frozen=True)
class Instruction:
    """One logical instruction: continuation lines joined, heredoc bodies appended."""

    keyword: str  # upper case
    args: str
    line: int
    heredocs: str = ""


@dataclass(frozen=True)
class ParsedStage:
    """A build stage: its `FROM` and the instructions up to the next `FROM`."""

    index: int
    name: str
    line: int
    base_raw: str  # the image token as written
    base: str  # after ARG substitution ("" when it could not be worked out)
    platform: str
    parent_stage: int | None  # `FROM <earlier stage>`
    instructions: tuple[Instruction, ...]
    valid: bool  # False when the FROM line already produced a problem


@dataclass(frozen=True)
class ParsedDockerfile:
    """The parse result: instructions, stages, global ARGs and the problems found."""

    instructions: tuple[Instruction, ...]
    stages: tuple[ParsedStage, ...]
    global_args: tuple[tuple[str, str | None], ...]
    escape: str
    problems: tuple[Problem, ...]
    too_many_stages: bool
    stage_ref_lines: frozenset[int] = frozenset()  # COPY/ADD --from=<earlier stage> lines
