"""A single-pass Dockerfile parser that keeps line numbers and never raises on bad syntax.

It follows BuildKit's front end where it matters to the policy: parser directives
(`# escape=`), continuation lines (comments and blank lines inside them are dropped; an
instruction's line is the line it starts on), heredocs in RUN/COPY/ADD, global `ARG`s and
their substitution in `FROM` (`$X`, `${X}`, `${X:-default}`, `${X-default}`, `${X:+alt}`),
stage names and stage references (`FROM builder`, `COPY --from=builder|0`).
Problems are returned as `Problem`s (rule id, line, message), never raised.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from images.texts import Message, _

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
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
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

_DIRECTIVE_RE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S+)\s*\Z")
_INSTRUCTION_RE = re.compile(r"^\s*(\S+)(?:\s+(.*))?\Z", re.DOTALL)
_HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VAR_RE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*\Z")
_FROM_FLAG_RE = re.compile(r"--from=(\S+)")
_CONTINUATION_RE = {
    "\\": re.compile(r"\\[ \t]*$"),
    "`": re.compile(r"`[ \t]*$"),
}
# Automatic platform ARGs BuildKit defines for FROM without an ARG line.
PLATFORM_ARGS = frozenset(
    {
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    }
)


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


def _split_lines(text: str) -> list[str]:
    # Only \n separates lines (as in BuildKit and hadolint); str.splitlines would also split
    # on \x0b, \x1c, U+2028 … and shift every line number after them.
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _directives(lines: list[str], problems: list[Problem]) -> tuple[str, int]:
    """Read parser directives at the top; return the escape character and the first body line."""
    escape = "\\"
    index = 0
    seen: set[str] = set()
    while index < len(lines):
        match = _DIRECTIVE_RE.match(lines[index].strip())
        if not match:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            break
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                problems.append(
                    Problem(
                        UNKNOWN_INSTRUCTION,
                        index + 1,
                        _(
                            "The escape directive must be '\\' or '`', not %(value)s.",
                            value=repr(value),
                        ),
                    )
                )
            else:
                escape = value
        index += 1
    return escape, index


def _logical_instructions(
    lines: list[str], start: int, escape: str, problems: list[Problem]
) -> list[Instruction]:
    continuation = _CONTINUATION_RE[escape]
    result: list[Instruction] = []
    index = start
    total = len(lines)
    while index < total:
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        first_line = index + 1
        parts: list[str] = []
        line = raw
        terminated = True
        while True:
            match = continuation.search(line)
            if not match:
                parts.append(line)
                index += 1
                break
            parts.append(line[: match.start()])
            index += 1
            # Skip comment and blank lines inside the continuation.
            while index < total and (
                not lines[index].strip() or lines[index].lstrip().startswith("#")
            ):
                index += 1
            if index >= total:
                terminated = False
                break
            line = lines[index]
        text = "".join(parts)
        match = _INSTRUCTION_RE.match(text)
        if not match:  # pragma: no cover - stripped text is never empty here
            continue
        keyword = match.group(1).upper()
        args = (match.group(2) or "").strip()
        if not terminated:
            problems.append(
                Problem(
                    UNTERMINATED,
                    first_line,
                    _(
                        "The %(keyword)s instruction ends with a line continuation '%(escape)s' "
                        "at the end of the file: remove the trailing escape or add the missing "
                        "line.",
                        keyword=keyword,
                        escape=escape,
                    ),
                )
            )
        heredocs = ""
        if keyword in _HEREDOC_INSTRUCTIONS and "<<" in args:
            bodies: list[str] = []
            for strip_tabs, _quote, delimiter in _HEREDOC_RE.findall(args):
                body: list[str] = []
                closed = False
                while index < total:
                    candidate = lines[index]
                    index += 1
                    if (candidate.lstrip("\t") if strip_tabs else candidate) == delimiter:
                        closed = True
                        break
                    body.append(candidate)
                bodies.append("\n".join(body))
                if not closed:
                    problems.append(
                        Problem(
                            UNTERMINATED,
                            first_line,
                            _(
                                "The heredoc <<%(delimiter)s of this %(keyword)s is never "
                                "closed: add a line containing only %(delimiter)s.",
                                delimiter=delimiter,
                                keyword=keyword,
                            ),
                        )
                    )
                    break
            heredocs = "\n".join(bodies)
        result.append(Instruction(keyword, args, first_line, heredocs))
    return result


def substitute(text: str, args: dict[str, str | None]) -> tuple[str, list[str]]:
    """Expand `$X`/`${X…}` in `text` with the global ARGs; also return the undefined names."""
    undefined: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        is_set = name in args and args[name] is not None
        value = args.get(name) or ""
        if operator == ":-":
            return value if value else word
        if operator == "-":
            return value if is_set else word
        if operator == ":+":
            return word if value else ""
        if operator == "+":
            return word if is_set else ""
        if not is_set:
            undefined.append(name)
        return value

    if "$" not in text:
        return text, undefined
    return _VAR_RE.sub(replace, text), undefined


def _parse_arg(args: str) -> list[tuple[str, str | None]]:
    result: list[tuple[str, str | None]] = []
    for token in args.split():
        name, sep, value = token.partition("=")
        if sep and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result.append((name, value if sep else None))
    return result


def _from_stage(
    instruction: Instruction,
    index: int,
    global_args: dict[str, str | None],
    names: dict[str, int],
    problems: list[Problem],
) -> tuple[str, str, str, str, int | None, bool]:
    """Parse a FROM line: (name, base_raw, base, platform, parent_stage, valid)."""
    tokens = instruction.args.split()
    line = instruction.line
    platform = ""
    while tokens and tokens[0].startswith("--"):
        flag = tokens.pop(0)
        if flag.startswith("--platform="):
            platform = flag.partition("=")[2]
        else:
            problems.append(
                Problem(
                    MALFORMED_FROM,
                    line,
                    _(
                        "FROM has an unknown flag %(flag)s; only --platform=<platform> is allowed.",
                        flag=repr(flag),
                    ),
                )
            )
            return "", "", "", platform, None, False
    comment_at = next((i for i, t in enumerate(tokens) if i and t.startswith("#")), None)
    if comment_at is not None:
        comment = " ".join(tokens[comment_at:])
        problems.append(
            Problem(
                MALFORMED_FROM,
                line,
                _(
                    "FROM %(args)s has a trailing comment; Dockerfiles have no inline comments: "
                    "move %(comment)s to its own line.",
                    args=repr(instruction.args),
                    comment=repr(comment),
                ),
            )
        )
        tokens = tokens[:comment_at]
    name = ""
    if len(tokens) == 3 and tokens[1].lower() == "as":
        name = tokens[2]
    elif len(tokens) != 1:
        problems.append(
            Problem(
                MALFORMED_FROM,
                line,
                _(
                    "FROM needs an image and an optional 'AS <name>' (FROM "
                    "image[:tag|@digest] [AS name]); got %(args)s.",
                    args=repr(instruction.args),
                )
                if tokens
                else _("FROM needs an image: write FROM image[:tag|@digest] [AS name]."),
            )
        )
        return "", tokens[0] if tokens else "", "", platform, None, False
    base_raw = tokens[0]
    if name:
        lowered = name.lower()
        if not _STAGE_NAME_RE.match(lowered):
            problems.append(
                Problem(
                    MALFORMED_FROM,
                    line,
                    _(
                        "The stage name %(name)s is invalid: start with a letter and use "
                        "letters, digits, '-', '_' and '.'.",
                        name=repr(name),
                    ),
                )
            )
        elif lowered in names:
            problems.append(
                Problem(
                    DUPLICATE_STAGE,
                    line,
                    _(
                        "The stage name %(name)s is already used by stage %(stage)s: give each "
                        "stage a unique name.",
                        name=repr(name),
                        stage=names[lowered],
                    ),
                )
            )
        name = lowered
    base, undefined = substitute(base_raw, global_args)
    if undefined:
        names_text = ", ".join(sorted(set(undefined)))
        problems.append(
            Problem(
                UNDEFINED_ARG,
                line,
                _(
                    "FROM %(base)s uses %(names)s which no ARG before the first FROM defines "
                    "with a value: add `ARG %(first)s=<default>` at the top so the base image "
                    "can be checked.",
                    base=base_raw,
                    names=names_text,
                    first=undefined[0],
                ),
            )
        )
        return name, base_raw, "", platform, None, False
    parent = names.get(base.lower()) if base else None
    return name, base_raw, base, platform, parent, True


def parse_dockerfile(text: str) -> ParsedDockerfile:
    """Parse Dockerfile text in one pass; syntax problems become `Problem`s, never exceptions."""
    problems: list[Problem] = []
    lines = _split_lines(text)
    escape, start = _directives(lines, problems)
    instructions = _logical_instructions(lines, start, escape, problems)

    global_args: dict[str, str | None] = {}
    names: dict[str, int] = {}
    stages: list[ParsedStage] = []
    current: dict[str, Any] | None = None
    body: list[Instruction] = []
    too_many = False
    kept: list[Instruction] = []
    stage_ref_lines: set[int] = set()

    def close() -> None:
        if current is not None:
            stages.append(ParsedStage(instructions=tuple(body), **current))

    for instruction in instructions:
        keyword = instruction.keyword
        if keyword not in INSTRUCTIONS:
            guess = difflib.get_close_matches(keyword, INSTRUCTIONS, n=1, cutoff=0.6)
            problems.append(
                Problem(
                    UNKNOWN_INSTRUCTION,
                    instruction.line,
                    _(
                        "Unknown instruction %(keyword)s. Did you mean %(guess)s? Valid "
                        "instructions are FROM, RUN, COPY, ADD, ENV, ARG, … (see the Dockerfile "
                        "reference).",
                        keyword=repr(keyword[:40]),
                        guess=guess[0],
                    )
                    if guess
                    else _(
                        "Unknown instruction %(keyword)s. Valid instructions are FROM, RUN, "
                        "COPY, ADD, ENV, ARG, … (see the Dockerfile reference).",
                        keyword=repr(keyword[:40]),
                    ),
                )
            )
            continue
        if keyword == "FROM":
            if len(stages) + (current is not None) >= MAX_STAGES:
                problems.append(
                    Problem(
                        TOO_MANY_STAGES,
                        instruction.line,
                        _(
                            "The Dockerfile has more than %(max)s stages (stage %(next)s starts "
                            "here): split it into smaller Dockerfiles. Nothing else was "
                            "checked.",
                            max=MAX_STAGES,
                            next=MAX_STAGES + 1,
                        ),
                    )
                )
                too_many = True
                break
            close()
            index = len(stages)
            name, base_raw, base, platform, parent, valid = _from_stage(
                instruction, index, global_args, names, problems
            )
            if name and name not in names:
                names[name] = index
            current = {
                "index": index,
                "name": name,
                "line": instruction.line,
                "base_raw": base_raw,
                "base": base,
                "platform": platform,
                "parent_stage": parent,
                "valid": valid,
            }
            body = []
            kept.append(instruction)
            continue
        kept.append(instruction)
        if current is None:
            if keyword == "ARG":
                global_args.update(_parse_arg(instruction.args))
            else:
                problems.append(
                    Problem(
                        BEFORE_FROM,
                        instruction.line,
                        _(
                            "%(keyword)s comes before the first FROM; only ARG may: move it "
                            "below a FROM line.",
                            keyword=keyword,
                        ),
                    )
                )
            continue
        body.append(instruction)
        if keyword in ("COPY", "ADD") and "--from=" in instruction.args:
            if _check_copy_from(instruction, len(stages), names, problems):
                stage_ref_lines.add(instruction.line)
    close()
    if not stages and not too_many:
        problems.append(
            Problem(
                NO_FROM,
                1,
                _(
                    "The Dockerfile has no FROM instruction: start it with FROM <approved base "
                    "image>."
                ),
            )
        )
    return ParsedDockerfile(
        instructions=tuple(kept),
        stages=tuple(stages),
        global_args=tuple(global_args.items()),
        escape=escape,
        problems=tuple(problems),
        too_many_stages=too_many,
        stage_ref_lines=frozenset(stage_ref_lines),
    )


def _check_copy_from(
    instruction: Instruction, index: int, names: dict[str, int], problems: list[Problem]
) -> bool:
    """Check `--from=`; True when it names an earlier stage."""
    match = _FROM_FLAG_RE.search(instruction.args)
    if not match:  # pragma: no cover - guarded by the caller
        return False
    source = match.group(1)
    if source.isdigit():
        if int(source) < index:
            return True
        problems.append(
            Problem(
                UNKNOWN_STAGE,
                instruction.line,
                _(
                    "%(keyword)s --from=%(source)s does not name an earlier stage (this is "
                    "stage %(index)s): use the index or name of a previous stage.",
                    keyword=instruction.keyword,
                    source=source,
                    index=index,
                ),
            )
        )
        return False
    if source.lower() in names:
        return True
    if any(ch in source for ch in ":/@$"):
        return False  # an image reference (checked by hadolint) or a build argument
    problems.append(
        Problem(
            UNKNOWN_STAGE,
            instruction.line,
            _(
                "%(keyword)s --from=%(source)s names no earlier stage (named stages: "
                "%(known)s): fix the name or add `AS %(source)s` to the stage's FROM.",
                keyword=instruction.keyword,
                source=source,
                known=", ".join(sorted(names)),
            )
            if names
            else _(
                "%(keyword)s --from=%(source)s names no earlier stage (named stages: none are "
                "named): fix the name or add `AS %(source)s` to the stage's FROM.",
                keyword=instruction.keyword,
                source=source,
            ),
        )
    )
    return False
